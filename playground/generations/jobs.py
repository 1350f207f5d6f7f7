"""The background job: run one task on its engine and record the outcome.

Runs in the worker (`manage.py db_worker`). The engine gets plain data and a context; files it
produces go to the default storage under `outputs/<task id>/<attempt>/`.

Each start of a task is an attempt (`Task.attempts`) holding a lease (`Task.lease_expires_at`) that a
heartbeat thread renews while the engine runs. A worker killed outright stops renewing, and the reaper
(`reaper.py`) re-queues or fails the task once the lease runs out. Every later write of the run is
fenced by its attempt, so a worker that was presumed dead but wakes up cannot finish a task that has
since started again elsewhere. Such a stale attempt is told to stop, like a cancelled one, but
`TaskRunContext.was_cancelled()` tells the engine it was taken over: it leaves upstream work running
for the new attempt, and writes nothing.

The queue holds one job per waiting task, but a job is a ticket, not an order: it starts the fairest
task it may (`fairness.py`), which need not be the one it was queued for. The queue's records stay
true all the same: the job then names the task it runs, and the job that was waiting for that task
takes over its ticket. A job that finds nothing it may start (every account waiting is at its cap)
ends, and the end of a running task, which frees a slot, queues a job for each task that could start
then but that no waiting job would start (`top_up_queue`; the reaper does the same for any lost).

Money: a run records what its work was billed (`cost_actual`): the engine's charge on success, and
also when the task was cancelled or failed after an upstream platform billed it; 0 when nothing was
billed; left unknown (NULL, counted at the estimate by spend checks) when the engine cannot tell,
for the reaper to settle.
"""

import logging
import math
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connections,
    transaction,
)
from django.db.models import F, Q, QuerySet
from django.db.models.fields.json import KT
from django.dispatch import receiver
from django.tasks import task
from django.tasks.signals import task_started
from django.utils import timezone
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from playground.catalog.pricing import estimate_cost
from playground.engines import get_engine
from playground.engines.base import EngineError, EngineJob, EngineStopped
from playground.keys.credentials import mark_upstream_failure, mark_upstream_used, upstream_key_for
from playground.storage import BUCKET_ERRORS, STORE_ERRORS

from .fairness import claim_next_task, lock_claims, startable_tasks
from .inputs import stored_inputs_for
from .lifecycle import charge_sentence, record_charge, record_message, transition
from .models import Status, Task

logger = logging.getLogger(__name__)


# What a database that went away raises (a restart, a dropped connection), as opposed to a query
# that is wrong: the work waits for it or is left to the task's lease, and is not failed for it.
DATABASE_GONE = (OperationalError, InterfaceError)


def lease_deadline() -> datetime:
    return timezone.now() + timedelta(seconds=settings.PLAYGROUND_TASK_LEASE)


def worker_is_silent(status: str, lease_expires_at: datetime | None, now: datetime | None = None) -> bool:
    """The worker running a task has missed two heartbeats in a row: it may have stopped. Nothing is
    decided here (the reaper retries the task once its lease lapses); the status panel says so
    instead of showing a running task that has quietly stopped."""
    if status != Status.PROCESSING or lease_expires_at is None:
        return False
    last_heard = lease_expires_at - timedelta(seconds=settings.PLAYGROUND_TASK_LEASE)
    return (now or timezone.now()) - last_heard > timedelta(seconds=2 * settings.PLAYGROUND_TASK_HEARTBEAT)


def still_running(attempt: int) -> Q:
    """The task is processing on `attempt`: not cancelled, and not re-queued and started again."""
    return Q(status=Status.PROCESSING, attempts=attempt)


class LeaseHeartbeat:
    """Renews the task's lease every PLAYGROUND_TASK_HEARTBEAT seconds while the engine runs.

    A thread rather than renewals from `report()`/`should_stop()`: an engine may block for minutes in
    one call (an upstream request, a long encode). It stops on exit, or by itself once the task is no
    longer this attempt's, and closes its own database connection. It is a daemon, so it can never
    hold up the worker's exit.
    """

    def __init__(self, task_id: str, attempt: int):
        self.task_id, self.attempt = task_id, attempt
        # A beat slower than half the lease would let a live worker's lease lapse.
        self.interval = min(settings.PLAYGROUND_TASK_HEARTBEAT, settings.PLAYGROUND_TASK_LEASE / 2)
        self._stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name=f"lease-{task_id}", daemon=True)

    def __enter__(self) -> "LeaseHeartbeat":
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopped.set()
        self.thread.join(timeout=5)

    def _beat(self) -> None:
        try:
            while not self._stopped.wait(self.interval):
                try:
                    held = Task.objects.filter(still_running(self.attempt), pk=self.task_id).update(
                        lease_expires_at=lease_deadline()
                    )
                except DatabaseError:
                    # A busy or restarting database: the lease outlasts a few missed beats, so try
                    # again later, on a new connection if this one broke.
                    logger.warning("could not renew the lease of %s", self.task_id, exc_info=True)
                    close_old_connections()
                    continue
                if not held:
                    return
        finally:
            connections.close_all()


def discard_files(paths: list[str]) -> None:
    for path in paths:
        try:
            default_storage.delete(path)
        except STORE_ERRORS:
            logger.warning("could not delete %s", path, exc_info=True)


def discard_task_outputs(task_id: str) -> None:
    """Delete every file under the task's outputs folder: what attempts whose worker died (or that
    were taken over) left behind, each in a folder of its own."""
    folders, paths = [f"outputs/{task_id}"], []
    while folders:
        folder = folders.pop()
        try:
            subfolders, names = default_storage.listdir(folder)
        except FileNotFoundError:
            continue
        except STORE_ERRORS:
            # Left for now: the task refers only to the files of the attempt that ends it.
            logger.warning("could not list %s to clear it", folder, exc_info=True)
            continue
        folders += [f"{folder}/{name}" for name in subfolders]
        paths += [f"{folder}/{name}" for name in names]
    discard_files(paths)


# Seconds between two writes of a task's progress at the least, but for the end of a step: an engine
# may report every video frame, and polls come once a second.
PROGRESS_WRITE_INTERVAL = 0.25


class TaskRunContext:
    """What an engine may do while it runs: report progress, check for cancel, save outputs."""

    def __init__(self, task: Task):
        self.task = task
        self.outputs: list[dict[str, Any]] = []
        self.current = still_running(task.attempts)
        self.progress_written, self.progress_written_at = -1.0, -math.inf

    def report(self, message: str) -> None:
        """Best effort, as progress: a note lost to a database restart does not stop the work."""
        try:
            record_message(self.task.pk, Status.PROCESSING, message)
        except DATABASE_GONE:
            logger.warning("could not note %r on %s", message, self.task.pk, exc_info=True)
            close_old_connections()

    def progress(self, fraction: float, *, step_done: bool = False) -> None:
        """Keep how far the work is (`engines.base`): a write at most every PROGRESS_WRITE_INTERVAL
        seconds unless a step ended, never a step back, and only while this attempt runs the task,
        so it never touches a task that ended or started again elsewhere (its status is not
        written). Best effort: a busy database skips a value rather than fail the task."""
        if not math.isfinite(fraction):
            return
        fraction = round(min(max(fraction, 0.0), 1.0), 3)
        now = time.monotonic()
        if fraction <= self.progress_written:
            return
        if not step_done and now - self.progress_written_at < PROGRESS_WRITE_INTERVAL:
            return
        behind = Q(progress__isnull=True) | Q(progress__lt=fraction)
        try:
            Task.objects.filter(self.current, behind, pk=self.task.pk).update(progress=fraction)
        except DatabaseError:
            logger.warning("could not write the progress of %s", self.task.pk, exc_info=True)
            close_old_connections()
            return
        self.progress_written, self.progress_written_at = fraction, now

    def should_stop(self) -> bool:
        """Whether the task was cancelled or taken over. A database that does not answer (a
        restart) says neither: the work goes on, and its end is fenced by the attempt anyway."""
        try:
            return not Task.objects.filter(self.current, pk=self.task.pk).exists()
        except DATABASE_GONE:
            logger.warning("could not check whether %s should stop", self.task.pk, exc_info=True)
            close_old_connections()
            return False

    def was_cancelled(self) -> bool:
        """Why `should_stop()` is true: the user cancelled the task (or a revoked demo pass did), as
        opposed to this attempt having lost its lease to another one (or to the reaper)."""
        return Task.objects.filter(pk=self.task.pk, status=Status.CANCELLED).exists()

    def discard_outputs(self) -> None:
        """Delete this run's files: the task ended without them (cancelled, failed, taken over)."""
        discard_files([item["file"] for item in self.outputs])
        self.outputs = []

    def save_upstream_id(self, upstream_id: str) -> None:
        """Persist the upstream task id before waiting on it, so a retry resumes that task."""
        Task.objects.filter(pk=self.task.pk).update(upstream_id=upstream_id)
        self.task.upstream_id = upstream_id

    def save_output(self, name: str, content: bytes, content_type: str, **meta: Any) -> None:
        """Keep one output under `outputs/<task id>/<attempt>/`: an attempt presumed dead that ends
        late deletes its own files, never those of the attempt that took over, which it would if
        both wrote `0.png` in one folder. A store that refuses it (a bucket that does not answer, a
        full disk) is tried PLAYGROUND_STORAGE_SAVE_RETRIES times more, backing off 1, 2, 4 … s;
        then the task fails saying the file could not be kept (EngineError `storage_unavailable`),
        rather than succeed without it."""
        folder = f"outputs/{self.task.pk}/{self.task.attempts}"
        retries = settings.PLAYGROUND_STORAGE_SAVE_RETRIES
        for attempt in range(retries + 1):
            try:
                path = default_storage.save(f"{folder}/{name}", ContentFile(content))
                break
            except STORE_ERRORS as exc:
                logger.warning("could not save %s of %s (try %d): %s", name, self.task.pk, attempt + 1, exc)
                if attempt == retries:
                    raise EngineError(
                        "storage_unavailable",
                        f"The output {name} could not be saved: the file store did not answer after "
                        f"{retries + 1} tries ({type(exc).__name__}).",
                    ) from None
                time.sleep(min(2**attempt, 30))
        self.outputs.append({"file": path, "content_type": content_type, "bytes": len(content), **meta})


def job_for(task: Task) -> EngineJob:
    """The engine's job for `task`; EngineError (input_unavailable) when an input file it
    references is gone."""
    entry = task.model
    job = EngineJob(
        task_id=task.pk,
        owner_id=task.owner_id,
        model_slug=entry.slug,
        kind=entry.kind,
        output_key=entry.output_key,
        roles=dict(entry.roles),
        input_schema=entry.input_schema,
        input=task.input,
        # Decrypted only for the engine that sends it, and only for this run.
        upstream_key=upstream_key_for(task.owner_id, task.team_id) if task.engine == "mindvideo" else None,
        upstream_id=task.upstream_id,
        attempt=task.attempts,
    )
    return replace(job, stored_inputs=stored_inputs_for(task.owner_id, task.input, job.describe))


@task()
def run_task(task_id: str) -> str:
    """Start the fairest task this job may start and run one attempt of it; returns its final
    status. `task_id` names the task the job was queued for (its ticket; see the module docstring).
    "skipped" when there is nothing it may start: the task was cancelled or taken, or every account
    waiting is at its cap. The attempt holds a lease while it runs."""
    job_id = take_current_job()
    with transaction.atomic():
        task_id = claim_next_task(
            message="Started.", attempts=F("attempts") + 1, lease_expires_at=lease_deadline()
        )
        if task_id is None:
            if job_id is not None:
                park(job_id)
            return "skipped"
        if job_id is not None:
            hand_over_ticket(job_id, task_id)
    try:
        return run_attempt(task_id)
    finally:
        # Its end frees a slot of its account: a task that may start now must have a job.
        try:
            top_up_queue()
        except DatabaseError:
            logger.warning("could not top up the queue after %s", task_id, exc_info=True)


def run_attempt(task_id: str) -> str:
    """Run the attempt just started on `task_id` to its end."""
    task = Task.objects.select_related("model").get(pk=task_id)
    if task.attempts > 1:
        discard_task_outputs(task_id)
    context = TaskRunContext(task)
    engine_title = task.engine
    try:
        engine = get_engine(task.engine)
        engine_title = engine.title
        with LeaseHeartbeat(task_id, task.attempts):
            result = engine.run(job_for(task), context)
    except EngineStopped as stop:
        context.discard_outputs()
        if not context.was_cancelled():
            # Taken over: the attempt that holds the task now carries the work on and records it.
            return "taken over"
        record_charge(task_id, stop.cost_actual, stop.reason or "Cancelled")
        return Status.CANCELLED
    except EngineError as exc:
        context.discard_outputs()
        if exc.code == "upstream_key_rejected":
            mark_upstream_failure(task.owner_id, exc.message, task.team_id)
        fail_attempt(task, context, exc.code, exc.message, exc.cost_actual, engine_title)
        return Status.FAILED
    except DATABASE_GONE:
        # Not the engine's fault nor the task's: the database went away (a restart) at a write the
        # run could not do without. The task is left processing; its lease lapses and the reaper
        # starts it again (or fails it past its last attempt), once the database is back.
        logger.warning(
            "the database went away while %s ran; its lease will recover it", task_id, exc_info=True
        )
        context.discard_outputs()
        return "interrupted"
    except Exception as exc:
        # Work an upstream platform had may have been billed: that is found out later (reaper).
        billed = None if context.task.upstream_id else Decimal(0)
        if isinstance(exc, BUCKET_ERRORS):
            # Reading an input file (saving is retried in `save_output`): the bucket did not answer.
            logger.warning("the file store failed %s: %s", task_id, exc)
            code = "storage_unavailable"
            message = (
                f"The file store did not answer ({type(exc).__name__}): the task's files could not be read."
            )
        else:
            logger.exception("engine %s crashed on %s", task.engine, task_id)
            code = "engine_crashed"
            message = "The engine failed unexpectedly" + ("." if billed is None else "; nothing was charged.")
        context.discard_outputs()
        fail_attempt(task, context, code, message, billed, engine_title)
        return Status.FAILED
    if task.engine == "mindvideo":
        mark_upstream_used(task.owner_id, task.team_id)
    cost = result.cost_actual
    if cost is None:
        cost = estimate_cost(task.model, task.input, seconds=result.billed_seconds)
    finished = record_end(
        task,
        Status.SUCCEEDED,
        message="Finished.",
        output={task.model.output_key: context.outputs},
        cost_actual=cost,
    )
    if not finished:
        # Cancelled (or taken over) while the last file was made: nothing refers to the files. A
        # cancel that came after an upstream platform finished the work does not undo its charge.
        context.discard_outputs()
        if not context.was_cancelled():
            return "taken over"
        record_charge(task_id, cost, f"Cancelled after {engine_title} had finished the task")
        return Status.CANCELLED
    return Status.SUCCEEDED


def fail_attempt(
    task: Task, context: TaskRunContext, code: str, message: str, cost: Decimal | None, engine: str
) -> None:
    """End this attempt's task as failed, charged `cost` (None: not known yet), saying why when
    something was (or may have been) charged."""
    failed = record_end(
        task, Status.FAILED, message=message, error={"code": code, "message": message}, cost_actual=cost
    )
    if failed and cost != 0:
        reason = f"{engine} had billed the task before it failed here" if cost else f"{engine} had the task"
        record_message(task.pk, Status.FAILED, charge_sentence(reason, cost, task.cost_estimate))


def record_end(task: Task, target: str, **fields: Any) -> bool:
    """End the task at `target` if this attempt still runs it (`lifecycle.transition`), riding out
    a database that does not answer for up to half a lease: the work is done, and a restart of the
    database must not make another attempt do it again. True when this attempt ended the task,
    also when a try whose answer was lost had done it."""
    deadline = time.monotonic() + settings.PLAYGROUND_TASK_LEASE / 2
    delay, tried = 0.5, False
    while True:
        try:
            if transition(task.pk, target, where=still_running(task.attempts), **fields):
                return True
            # A try that broke off may have committed: then the task is at `target` on this attempt.
            ended = Task.objects.filter(pk=task.pk, status=target, attempts=task.attempts)
            return tried and ended.exists()
        except DATABASE_GONE:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("could not record the end of %s; trying again in %g s", task.pk, delay)
            close_old_connections()
            time.sleep(delay)
            delay, tried = min(delay * 2, 5.0), True


def enqueue_task(task_id: str) -> None:
    """Queue a job for a waiting task (called once the task's row has committed)."""
    run_task.enqueue(task_id)


# --- The queue's jobs as tickets ---------------------------------------------------------------------

_current = threading.local()
PARKED = "parked"  # the mark of a job that found nothing it may start (`park`)


@receiver(task_started)
def remember_current_job(sender, task_result, **kwargs) -> None:
    """Note which queue row the worker is about to run (run_task reads it: django.tasks gives a
    task its own result only through a context argument, which every caller would then pass)."""
    if task_result.task.module_path == run_task.module_path:
        _current.job_id = task_result.id


def take_current_job() -> str | None:
    """The django-tasks-db row running this call of run_task; None when called directly."""
    job_id, _current.job_id = getattr(_current, "job_id", None), None
    if job_id is None or not isinstance(run_task.get_backend(), DatabaseBackend):
        return None
    return job_id


def jobs_for(task_id: str) -> QuerySet[DBTaskResult]:
    """The queue's jobs (django-tasks-db rows) that ran, run or wait to start this task."""
    return DBTaskResult.objects.filter(task_path=run_task.module_path, args_kwargs__args__0=task_id)


def hand_over_ticket(job_id: str, task_id: str) -> None:
    """The job `job_id` has claimed `task_id`: it names that task from now on, and the job that
    was waiting for that task (if any) takes over the job's former ticket. Inside the claim's
    transaction, so no other claim sees one half."""
    args = DBTaskResult.objects.filter(pk=job_id).values_list("args_kwargs", flat=True).first()
    if args is None or args["args"][0] == task_id:
        return
    ticket = args["args"][0]
    unfinished = jobs_for(task_id).filter(status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING])
    taken_over = unfinished.exclude(pk=job_id).update(args_kwargs=args)
    DBTaskResult.objects.filter(pk=job_id).update(args_kwargs={**args, "args": [task_id]})
    if not taken_over and Task.objects.filter(pk=ticket, status=Status.QUEUED).exists():
        enqueue_task(ticket)  # the task claimed had no job of its own (it was waiting for a slot)


def park(job_id: str) -> None:
    """The job `job_id` found nothing it may start and is ending: from now on it no longer counts
    as a job about to start its task (a task ending before the worker has closed the job's row
    must top the queue up for that task). Inside the claim's transaction."""
    job = DBTaskResult.objects.filter(pk=job_id)
    args = job.values_list("args_kwargs", flat=True).first()
    if args is not None:
        job.update(args_kwargs={**args, PARKED: True})


def run_task_jobs() -> QuerySet[DBTaskResult]:
    return DBTaskResult.objects.filter(task_path=run_task.module_path).annotate(
        ticket=KT("args_kwargs__args__0")
    )


def tasks_without_a_job(now: datetime, *, parked_only: bool = False) -> list[str]:
    """Tasks that could start now but that no job in the queue would start, fairest first.

    Any job waiting (or claimed by a worker within a lease, so about to start something) starts
    the fairest task it may, so what counts is how many there are against how many tasks could
    start; the tasks short of a job are the fairest of those without one of their own.
    `parked_only`: only tasks whose job ended without starting anything (or died), not tasks whose
    first job is still on its way (enqueued on commit, moments after the task exists).
    """
    claimed_since = now - timedelta(seconds=settings.PLAYGROUND_TASK_LEASE)
    running = Q(status=TaskResultStatus.RUNNING, started_at__gte=claimed_since) & ~Q(
        args_kwargs__has_key=PARKED
    )
    live = Q(status=TaskResultStatus.READY) | running
    pending = run_task_jobs().filter(live, ticket__in=Task.objects.filter(status=Status.QUEUED).values("pk"))
    # Under the claim lock: no job starts a task between the looks (which would count that task's
    # ticket in neither, or the task in both).
    with transaction.atomic():
        lock_claims()
        startable = startable_tasks()
        tickets = set(pending.values_list("ticket", flat=True))
        short = len(startable) - len(tickets)
        if short <= 0:
            return []
        missing = [task_id for task_id in startable if task_id not in tickets]
        if parked_only:
            ended = run_task_jobs().exclude(live).filter(args_kwargs__args__0__in=missing)
            had_a_job = set(ended.values_list("ticket", flat=True))
            missing = [task_id for task_id in missing if task_id in had_a_job]
    return missing[:short]


def top_up_queue() -> list[str]:
    """Queue a job for each task that could start now but that no job would start: after a task
    ends (a slot frees) while jobs of its account had found nothing they might start. Only the
    django-tasks-db backend lets us look at the queue."""
    if not isinstance(run_task.get_backend(), DatabaseBackend):
        return []
    missing = tasks_without_a_job(timezone.now(), parked_only=True)
    for task_id in missing:
        enqueue_task(task_id)
    return missing
