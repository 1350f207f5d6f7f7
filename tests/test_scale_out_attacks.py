"""Attacks on running across hosts (a bucket, outages, the worker that waits them out): what a
person would notice when two attempts of one task overlap, when a request's error is not an outage,
and when the bucket's credentials sit in PLAYGROUND_STORAGE_URL.

The outside world is real or faked on 127.0.0.1: the MindVideo platform (tests/upstream.py), the
database itself. Our own code runs as it is.
"""

import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.utils import timezone

from playground.generations.jobs import run_task
from playground.generations.models import Status, Task
from playground.generations.reaper import reap_expired_tasks
from playground.storage import storages_setting

from .helpers import ROOT, wait_for
from .upstream import Reply, png_bytes

# --- Two attempts of one task --------------------------------------------------------------------


@pytest.fixture
def platform(mindvideo):
    """The fake MindVideo platform (the `mindvideo` fixture), finishing a task with two images."""
    mindvideo.output_urls = lambda task_id: [
        f"{mindvideo.base_url}/files/{task_id}/{i}.png" for i in range(2)
    ]
    return mindvideo


@pytest.mark.django_db(transaction=True)
def test_a_stale_attempt_ending_late_leaves_the_files_of_the_attempt_that_took_over(
    api, platform, queue_only, client
):
    # Attempt 1 keeps its first image, then its second download is slow (a stalled host, a
    # database restart: anything that lets its lease lapse while it still runs).
    image = png_bytes()
    platform.replies["file"] = [Reply(200, image, "image/png"), Reply(200, image, "image/png", delay=3)]
    task_id = api.submit().json()["task_id"]
    stale = threading.Thread(target=run_task.call, args=[task_id])
    stale.start()
    assert wait_for(lambda: len(platform.seen("file")) == 2, timeout=20)

    # Its lease lapses: the reaper re-queues the task, and attempt 2 runs it to the end.
    assert reap_expired_tasks(timezone.now() + timedelta(hours=1)).requeued == [task_id]
    assert run_task.call(task_id) == Status.SUCCEEDED
    stale.join(timeout=20)
    assert not stale.is_alive()

    # The stale attempt has ended too (its end refused): the task shows what it was paid for.
    body = api.get(f"/api/v1/tasks/{task_id}").json()
    assert (body["status"], Task.objects.get(pk=task_id).attempts) == ("succeeded", 2)
    for item in body["output"]["images"]:
        response = client.get(item["url"])
        assert response.status_code == 200, f"{item['url']} is gone"


# --- A query the database refuses is not an outage -----------------------------------------------


@contextmanager
def table_missing(name: str):
    """The table is not there while the block runs, as when new code runs before `migrate` has:
    the database answers, and refuses every query naming it (SQLite raises OperationalError for
    that, as for a database it cannot open; PostgreSQL ProgrammingError)."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {name} RENAME TO {name}_away")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {name}_away RENAME TO {name}")


@pytest.mark.django_db(transaction=True)  # as in production: no test transaction around the request
def test_a_query_the_database_refuses_is_a_500_not_a_database_restart(api, client):
    task_id = api.submit().json()["task_id"]
    client.raise_request_exception = False  # answered by handler500, as in production
    with table_missing("generations_taskevent"):
        response = client.get(f"/api/v1/tasks/{task_id}/events", headers=api.headers({}))
    # A client told 503 and Retry-After would try again for ever; the operator would look for an outage.
    assert response.status_code == 500
    assert "Retry-After" not in response
    assert response.json()["error"]["code"] == "server_error"
    assert api.get(f"/api/v1/tasks/{task_id}/events").status_code == 200


# --- PLAYGROUND_STORAGE_URL with a secret in it --------------------------------------------------


@pytest.mark.parametrize("cut", ["/", "?", "#"])
def test_a_secret_with_an_unencoded_slash_question_mark_or_hash_stops_the_start(cut):
    # AWS secrets often hold a "/": read as it stands, the URL names bucket "akiaexample", no
    # credentials, and keys every file under the rest of the secret (in each file URL and log line).
    url = f"s3://AKIAEXAMPLE:wJalr{cut}XUtnFEMI@media-bucket/play"
    with pytest.raises(ImproperlyConfigured, match="percent-encode") as refused:
        storages_setting(url)
    assert "wJalr" not in str(refused.value) and "XUtnFEMI" not in str(refused.value)


@pytest.mark.parametrize(
    "endpoint", ["http://user:password@minio.test:9000", "minio.test:9000", "javascript:alert(1)"]
)
def test_an_endpoint_that_is_not_an_http_origin_stops_the_start(endpoint):
    # Its origin goes into every page's Content-Security-Policy (bucket_origins), credentials too.
    with pytest.raises(ImproperlyConfigured, match="endpoint") as refused:
        storages_setting(f"s3://media-bucket?endpoint={endpoint}")
    assert "password" not in str(refused.value)


DEBUG_PAGE = """
import sys
from django.views.debug import ExceptionReporter
try:
    raise RuntimeError("a bug")
except RuntimeError:
    print(ExceptionReporter(None, *sys.exc_info()).get_traceback_html())
"""


def test_the_bucket_secret_in_the_storage_url_is_not_on_the_debug_page():
    # DEBUG=true shows the settings with every error (so would an error report): the ones named
    # like a secret are masked, and PLAYGROUND_STORAGE_URL is not named like one.
    storage_url = "s3://AKIAEXAMPLE:wJalrXUtnFEMI@media-bucket"
    env = {**os.environ, "PLAYGROUND_STORAGE_URL": storage_url, "DEBUG": "true"}
    shown = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", DEBUG_PAGE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "a bug" in shown and "STORAGES" in shown
    assert "wJalrXUtnFEMI" not in shown
