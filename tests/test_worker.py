"""The real queue: a `db_worker` process on the same (file-backed) test database."""

import pytest
from django.core.files.storage import default_storage

from playground.generations.models import Task

from .helpers import wait_for


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
