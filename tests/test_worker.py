"""The real queue: a `db_worker` process on the same (file-backed) test database."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from django.db import connection

from playground.generations.models import Task

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """DATABASE_URL of the database this test process is using, for a child process."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = f"{db['USER']}:{db['PASSWORD']}@" if db["USER"] else ""
    return f"postgres://{auth}{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(settings, transactional_db):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "PLAYGROUND_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PLAYGROUND_TASK_BACKEND": "django_tasks_db.DatabaseBackend",
        "SECRET_KEY": django_settings.SECRET_KEY,
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--interval", "0.1", "--no-reload", "--no-startup-delay"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield process
    process.terminate()
    output, _ = process.communicate(timeout=20)
    print(output)


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_a_task_from_queued_to_succeeded(api, worker):
    response = api.submit(n=2, size="3:2")
    task_id = response.json()["task_id"]
    assert response.json()["status"] == "queued"
    assert wait_for(lambda: Task.objects.get(pk=task_id).is_terminal), "the worker never finished the task"
    assert worker.poll() is None, "the worker died"
    task = Task.objects.get(pk=task_id)
    assert task.status == "succeeded", task.error
    assert [e.status for e in task.events.filter(kind="status")] == ["queued", "processing", "succeeded"]
    files = task.output["images"]
    assert len(files) == 2 and all(default_storage.exists(f["file"]) for f in files)
    assert (files[0]["width"], files[0]["height"]) == (1023, 682)
