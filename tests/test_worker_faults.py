"""Real workers going wrong: killed mid-task, stopped with SIGTERM, told to cancel what they run.

The local engine is slowed down (PLAYGROUND_LOCAL_ENGINE_DELAY, seconds per image) so a task is
still running when the test acts; leases are seconds long so a dead worker is noticed quickly.
"""

import signal

import pytest
from django.core.files.storage import default_storage
from django_tasks_db.compat import TaskResultStatus

from playground.generations.models import Task
from playground.generations.reaper import jobs_for

from .conftest import WORKER
from .helpers import wait_for

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SHORT_LEASE = {"PLAYGROUND_TASK_LEASE": 2, "PLAYGROUND_TASK_HEARTBEAT": 0.5}
REAPER = ("reap_tasks", "--loop", "--interval", "0.2")


def rendering(task_id: str, image: int) -> bool:
    events = Task.objects.get(pk=task_id).events
    return events.filter(message__startswith=f"Rendering image {image} ").exists()


def terminal(task_id: str) -> bool:
    return Task.objects.get(pk=task_id).is_terminal


def stored_files(task_id: str) -> list[str]:
    """The names of the task's stored outputs, in whichever attempt's folder they are."""
    folder = f"outputs/{task_id}"
    if not default_storage.exists(folder):
        return []
    attempts, _ = default_storage.listdir(folder)
    return sorted(name for attempt in attempts for name in default_storage.listdir(f"{folder}/{attempt}")[1])


def statuses(task: Task) -> list[str]:
    return [event.status for event in task.events.filter(kind="status")]


def job_finished(task_id: str) -> bool:
    return jobs_for(task_id).filter(status=TaskResultStatus.SUCCESSFUL).exists()


def kill_mid_task(api, spawn, images: int) -> str:
    """Submit a slow task, SIGKILL its worker after the first image is saved; the task id."""
    doomed = spawn(*WORKER, PLAYGROUND_LOCAL_ENGINE_DELAY=1, **SHORT_LEASE)
    task_id = api.submit(n=images).json()["task_id"]
    assert wait_for(lambda: rendering(task_id, 2)), "the worker never got to the second image"
    doomed.kill()
    doomed.wait()
    task = Task.objects.get(pk=task_id)
    assert (task.status, task.attempts) == ("processing", 1)
    assert stored_files(task_id) == ["0.png"]  # the dead attempt's partial output
    assert jobs_for(task_id).get().status == TaskResultStatus.RUNNING  # as django-tasks-db leaves it
    return task_id


def test_a_task_whose_worker_is_killed_is_retried_and_succeeds(api, spawn):
    task_id = kill_mid_task(api, spawn, images=3)
    spawn(*REAPER, **SHORT_LEASE)
    spawn(*WORKER, **SHORT_LEASE)
    assert wait_for(lambda: terminal(task_id), timeout=30), "the task was never recovered"
    task = Task.objects.get(pk=task_id)
    assert task.status == "succeeded", task.error
    assert task.attempts == 2
    assert statuses(task) == ["queued", "processing", "queued", "processing", "succeeded"]
    assert task.events.filter(status="queued", message="Worker lost; retrying (attempt 2).").exists()
    # The retry rendered from scratch: the same names, no suffixed duplicates, no leftovers.
    assert [item["file"].rsplit("/", 1)[1] for item in task.output["images"]] == ["0.png", "1.png", "2.png"]
    assert stored_files(task_id) == ["0.png", "1.png", "2.png"]
    assert task.lease_expires_at is None
    # The dead worker's job was closed by the reaper; the retry's is marked done once run_task returns.
    assert wait_for(lambda: job_finished(task_id))
    jobs = dict(jobs_for(task_id).values_list("status", "exception_class_path"))
    assert jobs == {
        TaskResultStatus.FAILED: "playground.generations.reaper.WorkerLost",
        TaskResultStatus.SUCCESSFUL: "",
    }


def test_a_task_whose_worker_is_killed_on_its_last_attempt_fails_with_the_reason(api, spawn):
    task_id = kill_mid_task(api, spawn, images=2)
    spawn(*REAPER, PLAYGROUND_TASK_MAX_ATTEMPTS=1, **SHORT_LEASE)
    assert wait_for(lambda: terminal(task_id), timeout=30), "the task was never recovered"
    task = Task.objects.get(pk=task_id)
    assert task.status == "failed"
    assert task.error == {
        "code": "worker_lost",
        "message": "The worker running this task stopped; it was retried 0 times. Nothing was charged.",
    }
    assert task.cost_actual == 0
    assert task.output is None
    assert statuses(task) == ["queued", "processing", "failed"]
    # The reaper cleans up just after the failure commits: the dead attempt's files and queue row.
    assert wait_for(lambda: stored_files(task_id) == [])
    assert wait_for(lambda: jobs_for(task_id).get().status == TaskResultStatus.FAILED)


def test_a_slow_task_outlives_its_lease_while_its_worker_lives(api, spawn):
    """The heartbeat keeps renewing a 2 s lease through a 3 s render with a reaper watching."""
    lease = {"PLAYGROUND_TASK_LEASE": 2, "PLAYGROUND_TASK_HEARTBEAT": 0.25}
    spawn(*WORKER, PLAYGROUND_LOCAL_ENGINE_DELAY=1, **lease)
    spawn("reap_tasks", "--loop", "--interval", "0.1", **lease)
    task_id = api.submit(n=3).json()["task_id"]
    assert wait_for(lambda: terminal(task_id), timeout=30)
    task = Task.objects.get(pk=task_id)
    assert (task.status, task.attempts) == ("succeeded", 1)
    assert statuses(task) == ["queued", "processing", "succeeded"]


def test_sigterm_lets_the_worker_finish_its_task_then_exit(api, spawn):
    worker = spawn(*WORKER, PLAYGROUND_LOCAL_ENGINE_DELAY=0.5, **SHORT_LEASE)
    task_id = api.submit(n=3).json()["task_id"]
    assert wait_for(lambda: rendering(task_id, 1))
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0
    task = Task.objects.get(pk=task_id)
    assert (task.status, task.attempts) == ("succeeded", 1)
    assert stored_files(task_id) == ["0.png", "1.png", "2.png"]


def test_cancelling_a_running_task_stops_it_and_the_worker_carries_on(api, spawn):
    worker = spawn(*WORKER, PLAYGROUND_LOCAL_ENGINE_DELAY=0.5)
    task_id = api.submit(n=4).json()["task_id"]
    assert wait_for(lambda: rendering(task_id, 2))
    response = api.post(f"/api/v1/tasks/{task_id}/cancel")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["cost_actual"]) == ("cancelled", 0)
    assert wait_for(lambda: job_finished(task_id)), "the engine never stopped"
    assert jobs_for(task_id).get().return_value == "cancelled"
    task = Task.objects.get(pk=task_id)
    assert (task.status, task.cost_actual, task.output) == ("cancelled", 0, None)
    assert not rendering(task_id, 4)  # it stopped at the next image
    assert stored_files(task_id) == []  # images made before the cancel are deleted
    assert statuses(task) == ["queued", "processing", "cancelled"]
    assert worker.poll() is None
    next_id = api.submit(n=1).json()["task_id"]
    assert wait_for(lambda: terminal(next_id))
    assert Task.objects.get(pk=next_id).status == "succeeded"


def test_a_completion_that_loses_to_a_cancel_leaves_no_files(api, spawn):
    """Cancelled while the last image renders: the engine finishes, its completion is refused."""
    spawn(*WORKER, PLAYGROUND_LOCAL_ENGINE_DELAY=1.5)
    task_id = api.submit(n=1).json()["task_id"]
    assert wait_for(lambda: rendering(task_id, 1))
    assert api.post(f"/api/v1/tasks/{task_id}/cancel").status_code == 200
    assert wait_for(lambda: job_finished(task_id))
    assert jobs_for(task_id).get().return_value == "cancelled"
    task = Task.objects.get(pk=task_id)
    assert (task.status, task.cost_actual, task.output) == ("cancelled", 0, None)
    assert stored_files(task_id) == []
    assert statuses(task) == ["queued", "processing", "cancelled"]
