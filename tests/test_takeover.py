"""Takeover is not cancel: a worker that loses its task's lease (here, a database stall longer than
PLAYGROUND_TASK_LEASE) stops, but leaves the upstream task running for the attempt that took over,
which carries the same upstream task on to its end.

Two real worker processes, the fake platform on 127.0.0.1 (tests/upstream.py), and the real reaper
code run by the test inside the stall, so that it, not the stalled heartbeat, writes first.
"""

import time

import pytest
from django.db import connection, transaction

from playground.generations.models import Task
from playground.generations.reaper import jobs_for, reap_expired_tasks
from playground.keys.credentials import store_upstream_key

from .conftest import WORKER
from .helpers import money, wait_for
from .upstream import FakeUpstream, worker_env

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

LEASE = {"PLAYGROUND_TASK_LEASE": 2, "PLAYGROUND_TASK_HEARTBEAT": 0.5}


@pytest.fixture
def fake():
    upstream = FakeUpstream()
    upstream.plan = ["processing"] * 100_000  # until the test lets it finish
    yield upstream
    upstream.close()


def has_event(task_id: str, text: str) -> bool:
    return Task.objects.get(pk=task_id).events.filter(message__startswith=text).exists()


def stall_the_database_and_reap(seconds: float):
    """Hold the task table's write lock for `seconds` (the heartbeat's renewal waits behind it, as
    in a stalled database), then run a reaper pass inside the same transaction."""
    with transaction.atomic():  # SQLite: BEGIN IMMEDIATE, the database's one write lock
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("LOCK TABLE generations_task IN EXCLUSIVE MODE")  # reads go on
        time.sleep(seconds)
        return reap_expired_tasks()


def test_a_lease_lost_mid_task_ends_with_one_upstream_task_succeeded_and_ours_too(
    api, settings, fake, user, spawn
):
    settings.PLAYGROUND_ENGINE = "mindvideo"
    settings.PLAYGROUND_TASK_LEASE = LEASE["PLAYGROUND_TASK_LEASE"]
    store_upstream_key(user, fake.key)
    for _ in range(2):
        spawn(*WORKER, **worker_env(fake), **LEASE)
    task_id = api.submit().json()["task_id"]
    assert wait_for(lambda: has_event(task_id, "MindVideo: processing."), timeout=20)

    report = stall_the_database_and_reap(LEASE["PLAYGROUND_TASK_LEASE"] + 1)

    assert report.requeued == [task_id]
    # The other worker takes the task over and resumes the upstream task; the stalled one stops.
    assert wait_for(lambda: has_event(task_id, "Resuming MindVideo task task_up1 (attempt 2)."))
    returned = jobs_for(task_id).filter(return_value__isnull=False)
    assert wait_for(returned.exists, timeout=20), "the stalled attempt never stopped"
    with fake.lock:
        assert fake.tasks["task_up1"]["status"] == "processing"  # the stale attempt left it alone
        fake.tasks["task_up1"]["plan"] = ["succeeded"]
    assert wait_for(lambda: Task.objects.get(pk=task_id).is_terminal, timeout=20)

    task = Task.objects.get(pk=task_id)
    assert (task.status, task.attempts, task.upstream_id) == ("succeeded", 2, "task_up1"), task.error
    assert task.cost_actual == money(fake.cost_actual)
    assert [item["file"] for item in task.output["images"]] == [f"outputs/{task_id}/2/0.png"]
    statuses = list(task.events.filter(kind="status").values_list("status", flat=True))
    assert statuses == ["queued", "processing", "queued", "processing", "succeeded"]
    assert list(fake.tasks) == ["task_up1"] and len(fake.seen("submit")) == 1
    history = fake.tasks["task_up1"]["history"]  # one entry per poll
    assert "cancelled" not in history and history[-1] == "succeeded"
    assert fake.seen("cancel") == []
    assert wait_for(lambda: returned.count() == 2)
    assert sorted(returned.values_list("return_value", flat=True)) == ["succeeded", "taken over"]
