"""Live progress: a queued task's place in line and a running task's progress, as the API's task
body carries them (`queue_position`, `progress`) and the worker writes them."""

import time

from django.db import connection
from django.test.utils import CaptureQueriesContext

from playground.generations.jobs import PROGRESS_WRITE_INTERVAL, TaskRunContext
from playground.generations.lifecycle import transition
from playground.generations.models import Status, Task


def progress_writes(captured: CaptureQueriesContext) -> int:
    return sum(
        1 for q in captured.captured_queries if q["sql"].startswith("UPDATE") and '"progress"' in q["sql"]
    )


def test_the_worker_keeps_progress_only_forwards_and_never_on_a_task_that_ended(
    make_task, user, catalog, queue_only
):
    task = make_task(user, catalog)
    assert transition(task.pk, Status.PROCESSING, attempts=1)
    context = TaskRunContext(Task.objects.get(pk=task.pk))
    late = TaskRunContext(Task.objects.get(pk=task.pk))  # another view of the same attempt

    context.progress(0.5, step_done=True)
    context.progress(0.25, step_done=True)
    late.progress(0.4, step_done=True)
    assert Task.objects.get(pk=task.pk).progress == 0.5

    assert transition(task.pk, Status.SUCCEEDED)
    ended = Task.objects.get(pk=task.pk)
    late.progress(0.9, step_done=True)
    after = Task.objects.get(pk=task.pk)
    assert (after.status, after.progress, after.updated_at) == (Status.SUCCEEDED, 0.5, ended.updated_at)


def test_a_new_attempt_starts_its_progress_again(make_task, user, catalog, queue_only):
    task = make_task(user, catalog)
    assert transition(task.pk, Status.PROCESSING, attempts=1)
    TaskRunContext(Task.objects.get(pk=task.pk)).progress(0.75, step_done=True)
    assert transition(task.pk, Status.QUEUED, message="Worker lost; retrying (attempt 2).")
    assert transition(task.pk, Status.PROCESSING, attempts=2)
    assert Task.objects.get(pk=task.pk).progress is None


def test_frames_reported_as_fast_as_they_come_are_a_few_writes_a_second(make_task, user, catalog, queue_only):
    task = make_task(user, catalog)
    assert transition(task.pk, Status.PROCESSING, attempts=1)
    context = TaskRunContext(Task.objects.get(pk=task.pk))
    with CaptureQueriesContext(connection) as burst:
        for frame in range(600):  # ten seconds of 60 fps, reported at once
            context.progress(frame / 600)
    assert progress_writes(burst) == 1
    with CaptureQueriesContext(connection) as step:
        context.progress(0.5, step_done=True)  # the end of a step is always kept
    assert progress_writes(step) == 1
    assert Task.objects.get(pk=task.pk).progress == 0.5

    started, frame = time.monotonic(), 0
    with CaptureQueriesContext(connection) as steady:
        while time.monotonic() - started < 1.0:
            frame += 1
            context.progress(0.5 + frame / 1e6)
            time.sleep(0.001)
    assert progress_writes(steady) <= 1 / PROGRESS_WRITE_INTERVAL + 1, frame


def test_a_video_task_writes_its_progress_a_few_times_a_second_not_per_frame(make_task, user, catalog):
    data = {"prompt": "A fox in snow", "aspect_ratio": "1:1", "resolution": "540p", "duration": 2}
    started = time.monotonic()
    with CaptureQueriesContext(connection) as captured:
        task = make_task(user, catalog, model="viduq3-pro", **data)
    elapsed = time.monotonic() - started
    assert task.status == Status.SUCCEEDED, task.error
    writes = progress_writes(captured)
    # The start (a step's end), then at most one a PROGRESS_WRITE_INTERVAL, whatever the frame rate.
    assert 1 <= writes <= 2 + elapsed / PROGRESS_WRITE_INTERVAL, (writes, elapsed)
