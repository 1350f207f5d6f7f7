"""Test helpers shared across files: a seed input, money, an API client that checks every
answer against the OpenAPI document, and what tests of child processes (the real worker) need."""

import base64
import io
import json
import os
import re
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import jsonschema
from django.db import connection, connections
from django.utils import timezone
from django_tasks_db.compat import TaskResultStatus
from PIL import Image

from playground.generations.lifecycle import transition
from playground.generations.models import Status
from playground.generations.openapi import openapi_document
from playground.generations.reaper import jobs_for

ROOT = Path(__file__).resolve().parent.parent

SEED = "gemini-3-pro-image-preview-official"

# Statements of one count on an API key's rate counter in the database (access.RateCounter), once per lease: a
# savepoint (a transaction outside tests), the counting UPDATE, the read of the count, the release.
RATE_COUNTER_QUERIES = 4


def seed_input(**overrides):
    return {"prompt": "月光下的竹林小径", "size": "1:1", "resolution": "1K", "n": 1, **overrides}


DOCUMENT = openapi_document()
OPERATIONS = [
    (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path) for path in DOCUMENT["paths"]
]


def assert_matches_openapi(method: str, path: str, response) -> None:
    """The response is what /api/v1/openapi.json promises for this operation and status."""
    template = next((t for pattern, t in OPERATIONS if pattern.match(path)), None)
    assert template, f"{path} is not in the OpenAPI document"
    operation = DOCUMENT["paths"][template][method.lower()]
    assert str(response.status_code) in operation["responses"], (
        f"{method} {template} answered {response.status_code}, not documented"
    )
    schema = operation["responses"][str(response.status_code)]["content"]["application/json"]["schema"]
    resolver = {"components": DOCUMENT["components"], **schema}
    jsonschema.Draft202012Validator(resolver).validate(response.json())


class Api:
    """A test client speaking to /api/v1 with a Bearer key, checking every answer against the
    OpenAPI document. Submits run their on-commit enqueue (the immediate backend runs the task)."""

    def __init__(self, client, key, capture):
        self.client, self.key, self.capture = client, key, capture

    def headers(self, extra):
        return {"Authorization": f"Bearer {self.key}", **extra}

    def post(self, path, body=None, *, raw=None, headers=None):
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        with self.capture(execute=True):
            response = self.client.post(
                path, data=data, content_type="application/json", headers=self.headers(headers or {})
            )
        self._check("POST", path, response)
        return response

    def get(self, path, params=None, *, headers=None):
        response = self.client.get(path, params or {}, headers=self.headers(headers or {}))
        self._check("GET", path, response)
        return response

    def submit(self, model=SEED, headers=None, **overrides):
        return self.post("/api/v1/tasks", {"model": model, "input": seed_input(**overrides)}, headers=headers)

    def _check(self, method, path, response):
        assert response["Content-Type"].startswith("application/json"), response.content[:200]
        assert response["X-Request-Id"]
        if path.startswith("/api/v1/") and path.split("?")[0] != "/api/v1/openapi.json":
            assert_matches_openapi(method, path.split("?")[0], response)


def money(value) -> Decimal:
    return Decimal(str(value))


def database_url() -> str:
    """DATABASE_URL of the database this test process is using (the test database), for a child
    process. On PostgreSQL: this process's own DATABASE_URL with the test database's name, so the
    credentials, host (or socket) and options stay exactly as they were given."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    given = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(given._replace(path="/" + quote(db["NAME"], safe="")))


def wait_for(predicate, timeout=30.0, interval=0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def started_by_dead_worker(task_id: str, attempts: int = 1, lease_left: float = -1) -> None:
    """As a killed worker leaves things: the task processing on `attempts` with a lease ending
    `lease_left` seconds from now (lapsed by default), and its django-tasks-db job RUNNING."""
    jobs_for(task_id).get(status=TaskResultStatus.READY).claim("dead-worker")
    lease = timezone.now() + timedelta(seconds=lease_left)
    assert transition(task_id, Status.PROCESSING, attempts=attempts, lease_expires_at=lease)


def enter_demo(browser, link: str):
    """What a guest does with a demo link: open its landing page, then press Enter (a POST with the
    page's CSRF token). Opening the link alone changes nothing. Returns the Enter's response (302)."""
    landing = browser.get(link)
    assert landing.status_code == 200, landing.content.decode()[:300]
    html = landing.content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    entered = browser.post(link, {"csrfmiddlewaretoken": token})
    assert entered.status_code == 302, entered.content.decode()[:300]
    return entered


def submits_at_once(secrets: list[str], times: int) -> list[int]:
    """`times` API submits of the seed model sent at once, each from its own thread and connection,
    the i-th with key `secrets[i % len(secrets)]` and a prompt of its own: their statuses, sorted."""
    from django.test import Client

    statuses, lock, counter = [], threading.Lock(), iter(range(times))

    def submit() -> None:
        with lock:
            index = next(counter)
        response = Client().post(
            "/api/v1/tasks",
            {"model": SEED, "input": seed_input(prompt=f"race {index}")},
            content_type="application/json",
            headers={"Authorization": f"Bearer {secrets[index % len(secrets)]}"},
        )
        with lock:
            statuses.append(response.status_code)

    at_once(submit, times)
    return sorted(statuses)


def at_once(work: Callable[[], None], times: int) -> None:
    """Run `work` in `times` threads released together, each closing its own database connections
    when done; the first failure in any thread fails the caller."""
    barrier, errors = threading.Barrier(times), []

    def run() -> None:
        try:
            barrier.wait()
            work()
        except Exception as exc:  # re-raised below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]


def solid_png(colour=(250, 30, 30), size=(256, 256)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def data_uri(content: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(content).decode()}"
