"""The lease a running task holds: taken at start, renewed by the heartbeat, gone when it ends."""

import sqlite3
import threading
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, connections
from django.utils import timezone

from playground.generations.jobs import LeaseHeartbeat, discard_files, run_task, still_running
from playground.generations.lifecycle import transition
from playground.generations.models import Status, Task
from playground.generations.services import cancel_task

from .helpers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)  # the heartbeat writes from its own thread


@pytest.fixture
def fast_lease(settings):
    settings.PLAYGROUND_TASK_LEASE = 2
    settings.PLAYGROUND_TASK_HEARTBEAT = 0.1


@pytest.fixture
def running(api, queue_only):
    """A task a worker has just started: processing on attempt 1 with a lease 1 s from now."""
    task_id = api.submit().json()["task_id"]
    lease = timezone.now() + timedelta(seconds=1)
    assert transition(task_id, Status.PROCESSING, attempts=1, lease_expires_at=lease)
    return Task.objects.get(pk=task_id)


def lease_of(task_id: str):
    return Task.objects.get(pk=task_id).lease_expires_at


def test_a_run_counts_its_attempt_and_holds_a_lease_only_while_processing(api, queue_only, settings):
    settings.PLAYGROUND_LOCAL_ENGINE_DELAY = 0.5
    task_id = api.submit().json()["task_id"]
    before = timezone.now()
    leases = []

    def watch():
        leases.append(lease_of(task_id))
        return Task.objects.get(pk=task_id).events.filter(message__startswith="Rendering").exists()

    worker = threading.Thread(target=lambda: (run_task.call(task_id), connections.close_all()))
    worker.start()
    assert wait_for(watch, timeout=10)
    worker.join(timeout=10)
    lease = leases[-1]
    assert before + timedelta(seconds=settings.PLAYGROUND_TASK_LEASE - 1) < lease
    task = Task.objects.get(pk=task_id)
    assert (task.status, task.attempts, task.lease_expires_at) == ("succeeded", 1, None)


def test_the_heartbeat_renews_the_lease_while_the_engine_runs(running, fast_lease):
    first = running.lease_expires_at
    with LeaseHeartbeat(running.pk, attempt=1) as heartbeat:
        assert wait_for(lambda: lease_of(running.pk) > first + timedelta(seconds=1), timeout=3)
    assert not heartbeat.thread.is_alive()


def test_the_heartbeat_stops_once_the_task_is_no_longer_this_attempts(running, fast_lease):
    with LeaseHeartbeat(running.pk, attempt=1) as heartbeat:
        cancel_task(running)
        assert wait_for(lambda: not heartbeat.thread.is_alive(), timeout=3)
    assert lease_of(running.pk) is None


def test_a_stale_attempt_never_renews_a_newer_attempts_lease(running, fast_lease):
    Task.objects.filter(pk=running.pk).update(attempts=2)  # reaped and started again elsewhere
    first = lease_of(running.pk)
    with LeaseHeartbeat(running.pk, attempt=1) as heartbeat:
        assert wait_for(lambda: not heartbeat.thread.is_alive(), timeout=3)
    assert lease_of(running.pk) == first


def test_the_heartbeat_beats_at_least_twice_a_lease(settings):
    settings.PLAYGROUND_TASK_LEASE = 4
    settings.PLAYGROUND_TASK_HEARTBEAT = 30
    assert LeaseHeartbeat("task_x", attempt=1).interval == 2


@pytest.mark.sqlite  # locks the SQLite file
def test_the_heartbeat_rides_out_a_busy_database(running, fast_lease, caplog):
    options = connections.settings["default"]["OPTIONS"]
    timeout = options.get("timeout")
    options["timeout"] = 0.05  # the heartbeat's own connection gives up quickly
    locker = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        with LeaseHeartbeat(running.pk, attempt=1) as heartbeat:
            assert wait_for(lambda: "could not renew the lease" in caplog.text, timeout=5)
            locker.execute("COMMIT")
            first = lease_of(running.pk)
            assert wait_for(lambda: lease_of(running.pk) > first, timeout=3)
            assert heartbeat.thread.is_alive()
    finally:
        if locker.in_transaction:
            locker.execute("COMMIT")
        locker.close()
        options["timeout"] = timeout


def test_discarding_files_carries_on_past_one_it_cannot_delete(caplog):
    default_storage.save("outputs/task_x/0.png/stuck", ContentFile(b"x"))  # a non-empty directory
    kept = default_storage.save("outputs/task_x/1.png", ContentFile(b"x"))
    discard_files(["outputs/task_x/0.png", kept])
    assert not default_storage.exists(kept)
    assert "could not delete outputs/task_x/0.png" in caplog.text


def test_a_task_taken_over_by_another_attempt_cannot_be_finished_by_the_old_one(running):
    Task.objects.filter(pk=running.pk).update(attempts=2)  # reaped and started again elsewhere
    assert not transition(running.pk, Status.SUCCEEDED, where=still_running(1), cost_actual=1)
    assert transition(running.pk, Status.SUCCEEDED, where=still_running(2), cost_actual=1)


def test_it_never_lets_a_run_finish_a_task_that_was_started_again_meanwhile(api, queue_only, settings):
    settings.PLAYGROUND_LOCAL_ENGINE_DELAY = 0.5
    task_id = api.submit().json()["task_id"]
    worker = threading.Thread(target=lambda: (run_task.call(task_id), connections.close_all()))
    worker.start()
    assert wait_for(
        lambda: Task.objects.get(pk=task_id).events.filter(message__startswith="Rendering").exists()
    )
    # The reaper took the run for dead and another worker started attempt 2 while attempt 1 renders.
    assert transition(task_id, Status.QUEUED, message="Re-queued.")
    assert transition(
        task_id, Status.PROCESSING, attempts=2, lease_expires_at=timezone.now() + timedelta(seconds=60)
    )
    worker.join(timeout=10)
    task = Task.objects.get(pk=task_id)
    assert (task.status, task.attempts, task.output, task.cost_actual) == ("processing", 2, None, None)
    assert not task.events.filter(status=Status.SUCCEEDED).exists()
