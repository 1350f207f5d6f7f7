"""The reaper: tasks whose worker died are re-queued once, then failed; lost enqueues are redone."""

import signal
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.compat import TaskResultStatus

from playground.generations.jobs import run_task
from playground.generations.models import Task
from playground.generations.reaper import jobs_for, reap_expired_tasks

from .helpers import at_once, started_by_dead_worker, wait_for

READY, RUNNING, FAILED = TaskResultStatus.READY, TaskResultStatus.RUNNING, TaskResultStatus.FAILED


@pytest.fixture
def queue(settings):
    """Submits enqueue on django-tasks-db (a job row per task) and nothing runs them."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def submitted(api) -> str:
    task_id = api.submit(n=1).json()["task_id"]
    assert list(jobs_for(task_id).values_list("status", flat=True)) == [READY]
    return task_id


def job_statuses(task_id: str) -> list[str]:
    return sorted(jobs_for(task_id).values_list("status", flat=True))


def lost_messages(task_id: str) -> list[str]:
    return list(
        Task.objects.get(pk=task_id)
        .events.filter(message__startswith="Worker lost")
        .values_list("message", flat=True)
    )


def test_it_requeues_a_task_whose_lease_expired_once(api, queue):
    task_id = submitted(api)
    started_by_dead_worker(task_id)
    report = reap_expired_tasks()
    assert report.requeued == [task_id] and not report.failed and not report.reenqueued
    task = Task.objects.get(pk=task_id)
    assert (task.status, task.attempts, task.lease_expires_at) == ("queued", 1, None)
    assert lost_messages(task_id) == ["Worker lost; retrying (attempt 2)."]
    assert job_statuses(task_id) == [FAILED, READY]  # the dead worker's job closed, a new one waiting
    assert not reap_expired_tasks()
    assert lost_messages(task_id) == ["Worker lost; retrying (attempt 2)."]
    assert job_statuses(task_id) == [FAILED, READY]


def test_the_retry_renders_from_scratch(api, queue):
    task_id = submitted(api)
    started_by_dead_worker(task_id)
    default_storage.save(f"outputs/{task_id}/1/0.png", ContentFile(b"half an image"))
    reap_expired_tasks()
    assert run_task.call(task_id) == "succeeded"
    task = Task.objects.get(pk=task_id)
    assert (task.status, task.attempts) == ("succeeded", 2)
    assert task.output["images"][0]["file"] == f"outputs/{task_id}/2/0.png"
    assert default_storage.listdir(f"outputs/{task_id}/1")[1] == []  # the dead attempt's, gone
    assert default_storage.listdir(f"outputs/{task_id}/2")[1] == ["0.png"]
    assert default_storage.open(f"outputs/{task_id}/2/0.png").read(8) == b"\x89PNG\r\n\x1a\n"


def test_it_fails_a_task_whose_last_attempt_lost_its_worker(api, queue):
    task_id = submitted(api)
    started_by_dead_worker(task_id, attempts=2)
    default_storage.save(f"outputs/{task_id}/2/0.png", ContentFile(b"half an image"))
    report = reap_expired_tasks()
    assert report.failed == [task_id] and not report.requeued
    task = Task.objects.get(pk=task_id)
    message = "The worker running this task stopped; it was retried 1 time. Nothing was charged."
    assert task.status == "failed"
    assert task.error == {"code": "worker_lost", "message": message}
    assert (task.cost_actual, task.output, task.lease_expires_at) == (0, None, None)
    assert task.finished_at is not None
    assert task.events.filter(kind="status").last().message == message
    assert job_statuses(task_id) == [FAILED]  # closed, and no new job
    assert default_storage.listdir(f"outputs/{task_id}/2")[1] == []


def test_max_attempts_is_a_setting(api, queue, settings):
    settings.PLAYGROUND_TASK_MAX_ATTEMPTS = 3
    task_id = submitted(api)
    started_by_dead_worker(task_id, attempts=2)
    assert reap_expired_tasks().requeued == [task_id]
    assert lost_messages(task_id) == ["Worker lost; retrying (attempt 3)."]


def test_a_live_lease_is_left_alone(api, queue):
    task_id = submitted(api)
    started_by_dead_worker(task_id, lease_left=30)
    assert not reap_expired_tasks()
    task = Task.objects.get(pk=task_id)
    assert task.status == "processing"
    assert job_statuses(task_id) == [RUNNING]


def test_a_processing_task_from_before_leases_is_reaped_once_stale(api, queue, settings):
    task_id = submitted(api)
    started_by_dead_worker(task_id)
    Task.objects.filter(pk=task_id).update(lease_expires_at=None)
    assert not reap_expired_tasks()  # it changed just now
    later = timezone.now() + timedelta(seconds=settings.PLAYGROUND_TASK_LEASE + 1)
    assert reap_expired_tasks(now=later).requeued == [task_id]


def stranded(task_id: str, settings, seconds_over: float = 1) -> None:
    """Make the task look queued for longer than PLAYGROUND_QUEUED_TIMEOUT."""
    ago = timezone.now() - timedelta(seconds=settings.PLAYGROUND_QUEUED_TIMEOUT + seconds_over)
    Task.objects.filter(pk=task_id).update(updated_at=ago)


def test_a_lost_enqueue_is_enqueued_again_once(api, queue, settings):
    task_id = submitted(api)
    jobs_for(task_id).delete()  # the on-commit enqueue never happened
    stranded(task_id, settings)
    assert reap_expired_tasks().reenqueued == [task_id]
    assert job_statuses(task_id) == [READY]
    task = Task.objects.get(pk=task_id)
    assert task.status == "queued"
    assert task.events.filter(message="The queue had lost this task; queued it again.").count() == 1
    assert not reap_expired_tasks()  # the timeout starts again
    assert job_statuses(task_id) == [READY]


def test_a_queued_task_whose_job_is_waiting_is_not_enqueued_twice(api, queue, settings):
    task_id = submitted(api)
    stranded(task_id, settings)
    assert not reap_expired_tasks()
    assert job_statuses(task_id) == [READY]


def test_a_recently_queued_task_without_a_job_is_left_alone(api, queue):
    task_id = submitted(api)
    jobs_for(task_id).delete()
    assert not reap_expired_tasks()
    assert job_statuses(task_id) == []


def test_a_queued_task_whose_job_already_finished_is_enqueued_again(api, queue, settings):
    task_id = submitted(api)
    jobs_for(task_id).get().set_failed(RuntimeError("database is locked"))  # before it took the task
    stranded(task_id, settings)
    assert reap_expired_tasks().reenqueued == [task_id]
    assert job_statuses(task_id) == [FAILED, READY]


def test_a_job_claimed_by_a_worker_that_died_before_starting_the_task(api, queue, settings):
    task_id = submitted(api)
    jobs_for(task_id).get().claim("about-to-start")
    stranded(task_id, settings)
    assert not reap_expired_tasks()  # just claimed: the worker is starting it
    long_ago = timezone.now() - timedelta(seconds=settings.PLAYGROUND_TASK_LEASE + 1)
    jobs_for(task_id).update(started_at=long_ago)
    assert reap_expired_tasks().reenqueued == [task_id]
    assert job_statuses(task_id) == [FAILED, READY]


def test_without_the_database_queue_lost_enqueues_are_not_guessed_at(api, queue_only, settings):
    task_id = api.submit(n=1).json()["task_id"]
    stranded(task_id, settings)
    assert not reap_expired_tasks()
    assert Task.objects.get(pk=task_id).status == "queued"


@pytest.mark.django_db(transaction=True)
def test_two_reapers_at_once_requeue_each_task_once(api, queue):
    task_ids = [submitted(api) for _ in range(6)]
    for task_id in task_ids:
        started_by_dead_worker(task_id)
    reports = []
    at_once(lambda: reports.append(reap_expired_tasks()), 2)
    requeued = [task_id for report in reports for task_id in report.requeued]
    assert sorted(requeued) == sorted(task_ids)
    for task_id in task_ids:
        assert lost_messages(task_id) == ["Worker lost; retrying (attempt 2)."]
        assert job_statuses(task_id) == [FAILED, READY]


def test_the_command_reaps_once_and_says_what_it_did(api, queue, capsys):
    task_id = submitted(api)
    started_by_dead_worker(task_id)
    call_command("reap_tasks")
    assert capsys.readouterr().out.strip() == "Re-queued 1, failed 0, re-enqueued 0 task(s)."
    assert Task.objects.get(pk=task_id).status == "queued"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_looping_command_keeps_reaping_until_sigterm(api, spawn):
    reaper = spawn("reap_tasks", "--loop", "--interval", "0.1")
    task_id = submitted(api)
    started_by_dead_worker(task_id)
    assert wait_for(lambda: Task.objects.get(pk=task_id).status == "queued")
    reaper.send_signal(signal.SIGTERM)
    assert reaper.wait(timeout=10) == 0


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_looping_command_outlives_database_errors(spawn, tmp_path):
    empty = f"sqlite:///{tmp_path / 'no-tables.sqlite3'}"
    reaper = spawn("reap_tasks", "--loop", "--interval", "0.1", DATABASE_URL=empty)
    assert wait_for(lambda: reaper.log.read_text().count("reaping failed") >= 2, timeout=20)
    assert reaper.poll() is None
    reaper.send_signal(signal.SIGTERM)
    assert reaper.wait(timeout=10) == 0
