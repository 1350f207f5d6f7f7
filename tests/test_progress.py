"""Live progress: a queued task's place in line and a running task's progress, as the API's task
body carries them (`queue_position`, `progress`) and the worker writes them."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from playground.generations.jobs import PROGRESS_WRITE_INTERVAL, TaskRunContext
from playground.generations.lifecycle import transition
from playground.generations.models import TERMINAL, Status, Task
from playground.keys.credentials import store_upstream_key

from .conftest import WORKER
from .helpers import wait_for
from .upstream import worker_env


def watch(api, task_id: str, timeout: float = 60.0) -> list[dict]:
    """Poll the task as a client with a cache does (If-None-Match: the last ETag) until it ends:
    the body of each answer that was not 304 Not Modified, in order."""
    bodies, etag, deadline = [], None, time.monotonic() + timeout
    while time.monotonic() < deadline:
        headers = api.headers({"If-None-Match": etag} if etag else {})
        response = api.client.get(f"/api/v1/tasks/{task_id}", headers=headers)
        if response.status_code == 200:
            bodies.append(response.json())
            etag = response["ETag"]
            if bodies[-1]["status"] in TERMINAL:
                return bodies
        else:
            assert response.status_code == 304, response.content
        time.sleep(0.03)
    raise AssertionError(f"the task did not end within {timeout} s: {bodies[-1:]}")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_place_in_line_counts_down_for_three_queued_tasks_with_one_worker(api, spawn):
    created = [api.submit(prompt=f"in line {number}").json() for number in range(3)]
    assert [body["queue_position"] for body in created] == [1, 2, 3]
    spawn(*WORKER, PLAYGROUND_LOCAL_ENGINE_DELAY=1)  # one worker, a second an image

    seen = watch(api, created[2]["task_id"])

    assert [body["queue_position"] for body in seen if body["status"] == "queued"] == [3, 2, 1]
    assert [body["queue_position"] for body in seen if body["status"] != "queued"] == [None] * (len(seen) - 3)
    assert seen[-1]["status"] == "succeeded"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_progress_rises_through_a_four_image_task_on_the_local_engine(api, spawn):
    spawn(*WORKER, PLAYGROUND_LOCAL_ENGINE_DELAY=0.6)
    task_id = api.submit(n=4).json()["task_id"]

    seen = watch(api, task_id)

    running = [body["progress"] for body in seen if body["status"] == "processing"]
    known = [progress for progress in running if progress is not None]
    assert running[: len(running) - len(known)] == [None] * (len(running) - len(known))  # only at first
    assert known == sorted(known) and len(known) == len(set(known)), running  # each a new answer
    assert {0.25, 0.5, 0.75} <= set(known), running  # after each of its first three images
    assert (seen[-1]["status"], seen[-1]["progress"]) == ("succeeded", 1.0)


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


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_mindvideo_task_shows_the_platforms_progress_and_none_while_it_gives_none(
    api, settings, fake, user, spawn
):
    settings.PLAYGROUND_ENGINE = "mindvideo"
    store_upstream_key(user, fake.key)
    fake.plan = ["processing"] * 100_000  # running there, saying nothing of how far
    spawn(*WORKER, **worker_env(fake))
    task_id = api.submit().json()["task_id"]

    def body() -> dict:
        return api.get(f"/api/v1/tasks/{task_id}").json()

    assert wait_for(lambda: len(fake.seen("poll")) >= 3), "the worker never polled the platform"
    assert (body()["status"], body()["progress"]) == ("processing", None)  # honestly unknown
    for figure in (0.4, 0.8):
        with fake.lock:
            fake.tasks["task_up1"]["plan"] = [("processing", figure)] * 100_000
        assert wait_for(lambda figure=figure: body()["progress"] == figure), body()
    with fake.lock:
        fake.tasks["task_up1"]["plan"] = ["succeeded"]
    assert wait_for(lambda: body()["status"] == "succeeded"), body()
    assert body()["progress"] == 1.0
