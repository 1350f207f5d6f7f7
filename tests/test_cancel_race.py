"""A cancel arriving while the worker runs the task leaves one consistent end state: either the
task succeeded, with its files and its charge, or it was cancelled, with no charge and no files."""

import threading
import time
from collections import Counter

import pytest
from django.db import connections

from playground.generations.jobs import run_task
from playground.generations.models import Status, Task
from playground.generations.services import TaskConflict, cancel_task

# (seconds the local engine waits before rendering, seconds after the worker starts that the cancel
# comes). A run takes ~0.1 s plus the wait: the first round ends long before its cancel, the last is
# cancelled long before it ends, and the rounds between move the end across the cancel.
CANCEL_AT = 0.2
ROUNDS = [
    (0.0, 1.0),
    *((delay, CANCEL_AT) for delay in (0.0, 0.03, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2)),
    (0.5, 0.05),
]


def race(*actions):
    """Run each action in its own thread (own database connection), released together."""
    barrier = threading.Barrier(len(actions))
    results: list = [None] * len(actions)
    errors: list[BaseException] = []

    def run(index, action):
        try:
            barrier.wait()
            results[index] = action()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a racer hung"
    if errors:
        raise errors[0]
    return results


def cancel_after(seconds, task):
    time.sleep(seconds)
    try:
        cancel_task(task)
    except TaskConflict:
        return False
    return True


def files_of(media_root, task):
    folder = media_root / "outputs" / task.pk  # a folder per attempt in it
    return sorted(path.name for path in folder.rglob("*") if path.is_file())


@pytest.mark.django_db(transaction=True)
def test_it_ends_a_run_and_a_cancel_racing_it_in_exactly_one_state(api, queue_only, settings, media_root):
    outcomes = Counter()
    for delay, cancel_at in ROUNDS:
        settings.PLAYGROUND_LOCAL_ENGINE_DELAY = delay
        task = Task.objects.get(pk=api.submit().json()["task_id"])
        ran, was_cancelled = race(
            lambda task=task: run_task.call(task.pk),
            lambda task=task, cancel_at=cancel_at: cancel_after(cancel_at, task),
        )
        task.refresh_from_db()
        story = list(task.events.filter(kind="status").values_list("status", flat=True))
        if was_cancelled:
            assert ran in ("cancelled", "skipped"), ran  # skipped: cancelled before it started
            assert (task.status, task.output, task.cost_actual) == ("cancelled", None, 0)
            assert files_of(media_root, task) == [], "a cancelled task left files"
            assert story in (["queued", "processing", "cancelled"], ["queued", "cancelled"]), story
        else:
            assert ran == "succeeded", ran
            assert task.status == "succeeded"
            assert task.cost_actual == task.cost_estimate > 0
            produced = [item["file"].rsplit("/", 1)[-1] for item in task.output["images"]]
            assert produced and files_of(media_root, task) == sorted(produced)
            assert story == ["queued", "processing", "succeeded"], story
        assert task.finished_at is not None and task.lease_expires_at is None
        outcomes[f"{task.status} ({ran})" if was_cancelled else task.status] += 1
    print(f"outcomes over {len(ROUNDS)} rounds: {dict(outcomes)}")
    assert {Status.SUCCEEDED, Status.CANCELLED} <= {outcome.split()[0] for outcome in outcomes}
