"""Exactly once under load: 200 tasks, four `db_worker` processes claiming from one queue.

On PostgreSQL the workers claim jobs with `SELECT … FOR UPDATE SKIP LOCKED` (as on many hosts in
production); on SQLite inside an EXCLUSIVE transaction. Either way every job must be claimed by one
worker, and every task must run once: no task lost, none run twice, no event missing or doubled.
"""

from collections import Counter, defaultdict

import pytest
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from playground.generations.jobs import run_task
from playground.generations.models import TERMINAL, Task, TaskEvent
from playground.generations.services import submit_task

from .conftest import WORKER
from .helpers import SEED, seed_input, wait_for

TASKS = 200
WORKERS = [f"scale-worker-{number}" for number in range(1, 5)]
# (kind, status) of each event of a task run once: queued, started, one render message, finished.
ONE_RUN = [("status", "queued"), ("status", "processing"), ("message", "processing"), ("status", "succeeded")]


def unfinished(task_ids: list[str]) -> bool:
    return Task.objects.filter(pk__in=task_ids).exclude(status__in=TERMINAL).exists()


def finished_jobs() -> int:
    return DBTaskResult.objects.filter(task_path=run_task.module_path).finished().count()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_two_hundred_tasks_on_four_workers_each_run_exactly_once(user, catalog, spawn):
    # One owner's 200 tasks on four workers: about exactly-once, not fairness, so no per-owner cap
    # (with one, two workers would find nothing they may start and end jobs as "skipped").
    workers = [spawn(*WORKER, "--worker-id", name, PLAYGROUND_MAX_RUNNING_PER_OWNER=0) for name in WORKERS]
    # Every worker is polling before the first job exists, so all four contend for the whole queue.
    assert wait_for(lambda: all("Starting worker" in w.log.read_text() for w in workers), timeout=60)

    # One commit makes 200 tasks; their jobs are enqueued right after it (on commit).
    with transaction.atomic():
        task_ids = [
            submit_task(user, SEED, seed_input(prompt=f"load {i}"), request_id=f"req_scale_{i}").task.pk
            for i in range(TASKS)
        ]
    assert wait_for(lambda: not unfinished(task_ids), timeout=240), "the workers never finished"
    assert wait_for(lambda: finished_jobs() == TASKS, timeout=30), "jobs were left unfinished"
    assert all(w.poll() is None for w in workers), "a worker died"

    # Every task succeeded on its first and only attempt, with its one image stored.
    tasks = list(Task.objects.filter(pk__in=task_ids))
    assert Counter((t.status, t.attempts) for t in tasks) == {("succeeded", 1): TASKS}
    images = [image for t in tasks for image in t.output["images"]]
    assert len(images) == TASKS and all(default_storage.exists(image["file"]) for image in images)

    # Each task's events, in order: queued -> processing -> succeeded once each, none lost or doubled.
    events = defaultdict(list)
    rows = TaskEvent.objects.filter(task_id__in=task_ids).values_list("task_id", "kind", "status")
    for task_id, kind, status in rows:
        events[task_id].append((kind, status))
    assert {task_id: events[task_id] for task_id in task_ids} == dict.fromkeys(task_ids, ONE_RUN)

    # The queue's own record: one job per task, each claimed by exactly one worker and done.
    jobs = list(DBTaskResult.objects.filter(task_path=run_task.module_path))
    assert sorted(job.args_kwargs["args"][0] for job in jobs) == sorted(task_ids)
    assert [job.worker_ids for job in jobs if len(job.worker_ids) != 1] == []
    assert Counter((job.status, job.return_value) for job in jobs) == {
        (TaskResultStatus.SUCCESSFUL, "succeeded"): TASKS
    }
    claims = Counter(job.worker_ids[0] for job in jobs)
    assert set(claims) == set(WORKERS), f"not every worker took part: {claims}"

    first_start = min(t.started_at for t in tasks)
    last_end = max(t.finished_at for t in tasks)
    busy = (last_end - first_start).total_seconds()
    print(
        f"{TASKS} tasks on {len(WORKERS)} workers ({connection.vendor}): {TASKS / busy:.1f} tasks/s, "
        f"{busy:.1f} s from the first start to the last finish; claims: {dict(sorted(claims.items()))}"
    )
