"""The reaper: recovers tasks that nobody is running.

A worker killed outright (SIGKILL, out of memory, a lost machine) stops renewing its task's lease and
leaves the task `processing` (and its django-tasks-db row RUNNING) forever. An enqueue lost between
the submit's commit and its on-commit hook leaves a task `queued` with no job. `reap_expired_tasks`
puts both right: it re-queues a lapsed task for another attempt, or fails it once it has been started
PLAYGROUND_TASK_MAX_ATTEMPTS times, and enqueues a stranded queued task again (one that could start
but that no job in the queue would start: see the fair queue in `jobs.py`). `settle_charges`
finds out what an upstream platform billed for tasks that ended without knowing (cancelled or failed
while the platform had them, and nobody left to ask it), cancelling upstream work nobody will collect.

Any number of reapers may run at once: every change is a conditional UPDATE checked by its row count,
so of two reapers acting on one task, one acts and the other changes nothing. `manage.py reap_tasks
--loop` runs it as its own process (`manage.py serve` starts one): db_worker has no hook for periodic
work, and a reaper inside a worker would die with the very worker it should replace.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Case, DecimalField, Q, Value, When
from django.utils import timezone
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.compat import TaskResultStatus

from playground.engines import get_engine
from playground.engines.base import EngineError

from .jobs import discard_task_outputs, enqueue_task, job_for, jobs_for, run_task, tasks_without_a_job
from .lifecycle import record_charge, record_message, transition
from .models import TERMINAL, Status, Task

logger = logging.getLogger(__name__)

# How long after a task ended the reaper keeps asking its platform what it charged; after that it
# stays counted at its estimate.
SETTLE_FOR = timedelta(days=7)


class WorkerLost(Exception):
    """Recorded on a queue row whose worker died while running it."""


@dataclass
class ReapReport:
    requeued: list[str] = field(default_factory=list)  # lease lapsed: queued for another attempt
    failed: list[str] = field(default_factory=list)  # lease lapsed on the last allowed attempt
    reenqueued: list[str] = field(default_factory=list)  # queued, but the queue had no job for it
    settled: list[str] = field(default_factory=list)  # ended with an unknown charge, now known

    def __bool__(self) -> bool:
        return bool(self.requeued or self.failed or self.reenqueued or self.settled)

    def __str__(self) -> str:
        settled = f" Settled {len(self.settled)} charge(s)." if self.settled else ""
        return (
            f"Re-queued {len(self.requeued)}, failed {len(self.failed)}, "
            f"re-enqueued {len(self.reenqueued)} task(s).{settled}"
        )


def worker_lost_message(attempts: int, upstream: bool = False) -> str:
    """Why the task failed; `upstream`: it had an upstream task, whose charge is checked later."""
    retried = attempts - 1
    charged = (
        "What the platform charged for its work is recorded once it is known."
        if upstream
        else "Nothing was charged."
    )
    return (
        f"The worker running this task stopped; it was retried {retried} "
        f"{'time' if retried == 1 else 'times'}. {charged}"
    )


# A task that reached an upstream platform may have been billed there: not known yet (NULL).
CHARGE_IF_NO_UPSTREAM = Case(
    When(upstream_id="", then=Value(Decimal(0))),
    default=Value(None),
    output_field=DecimalField(max_digits=12, decimal_places=4),
)


def lease_lapsed(now: datetime) -> Q:
    """Processing, and nobody has renewed the lease in time. A processing row without a lease
    (started before leases existed) counts once it has not changed for a lease's length."""
    stale = now - timedelta(seconds=settings.PLAYGROUND_TASK_LEASE)
    return Q(status=Status.PROCESSING) & (
        Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True, updated_at__lt=stale)
    )


def reap_expired_tasks(now: datetime | None = None) -> ReapReport:
    """Re-queue or fail tasks whose worker died; re-enqueue queued tasks the queue has lost."""
    now = now or timezone.now()
    report = ReapReport()
    lapsed = Task.objects.filter(lease_lapsed(now)).values_list("pk", "attempts", "upstream_id")
    for task_id, attempts, upstream_id in lapsed:
        # Still this attempt and still lapsed: another reaper, or a worker waking up, may have won.
        unchanged = Q(attempts=attempts) & lease_lapsed(now)
        if attempts >= settings.PLAYGROUND_TASK_MAX_ATTEMPTS:
            message = worker_lost_message(attempts, upstream=bool(upstream_id))
            if transition(
                task_id,
                Status.FAILED,
                where=unchanged,
                message=message,
                error={"code": "worker_lost", "message": message},
                cost_actual=CHARGE_IF_NO_UPSTREAM,
            ):
                close_abandoned_jobs(task_id)
                discard_task_outputs(task_id)
                report.failed.append(task_id)
        elif transition(
            task_id,
            Status.QUEUED,
            where=unchanged,
            message=f"Worker lost; retrying (attempt {attempts + 1}).",
        ):
            close_abandoned_jobs(task_id)
            # If this enqueue is lost too, the queued-timeout check below finds the task later.
            enqueue_task(task_id)
            report.requeued.append(task_id)
    report.reenqueued = reenqueue_stranded_tasks(now)
    report.settled = settle_charges(now)
    if report:
        logger.warning(
            "reaper: re-queued %s, failed %s, re-enqueued %s, settled %s",
            report.requeued,
            report.failed,
            report.reenqueued,
            report.settled,
        )
    return report


def settle_charges(now: datetime) -> list[str]:
    """Ask the platform what it billed for each task that ended with its charge unknown, once a
    lease has passed since the task last changed (its own run, if alive, records the charge first).

    Such a task was cancelled or failed while an upstream platform had it, and nobody could tell
    what it cost: its worker died, or the platform did not answer. Upstream work still running is
    cancelled (nobody will collect it). A task the platform cannot tell about yet is asked again a
    lease later; it counts at its estimate meanwhile, and for good after SETTLE_FOR.
    """
    quiet = now - timedelta(seconds=settings.PLAYGROUND_TASK_LEASE)
    unknown = Task.objects.filter(
        status__in=TERMINAL, cost_actual__isnull=True, updated_at__lt=quiet, finished_at__gte=now - SETTLE_FOR
    )
    settled = []
    for task in unknown.select_related("model"):
        try:
            engine = get_engine(task.engine)
            cost = engine.settle(job_for(task))
        except EngineError as exc:
            logger.warning("could not settle the charge of %s: %s", task.pk, exc.message)
            cost = None
        if cost is None:
            Task.objects.filter(pk=task.pk, cost_actual__isnull=True).update(updated_at=now)  # ask later
        elif record_charge(task.pk, cost, f"Checked with {engine.title} after the task ended"):
            settled.append(task.pk)
    return settled


def reenqueue_stranded_tasks(now: datetime) -> list[str]:
    """Enqueue again each task queued longer than PLAYGROUND_QUEUED_TIMEOUT that could start now
    but that no job in the queue would start (`jobs.tasks_without_a_job`). A task waiting for a
    slot of its account (at its cap) is not stranded: the end of a running task queues its job.

    Only the django-tasks-db backend lets us look at the queue; with any other backend a long queue
    and a lost job look the same, so nothing is done.
    """
    if not isinstance(run_task.get_backend(), DatabaseBackend):
        return []
    cutoff = now - timedelta(seconds=settings.PLAYGROUND_QUEUED_TIMEOUT)
    missing = tasks_without_a_job(now)
    stranded = Task.objects.filter(pk__in=missing, status=Status.QUEUED, updated_at__lt=cutoff)
    reenqueued = []
    for task_id, updated_at in stranded.values_list("pk", "updated_at"):
        # Claim the task by touching it: a second reaper's identical UPDATE then matches no row, and
        # the next pass waits a full timeout again.
        claimed = Task.objects.filter(pk=task_id, status=Status.QUEUED, updated_at=updated_at).update(
            updated_at=now
        )
        if claimed:
            close_abandoned_jobs(task_id)
            record_message(task_id, Status.QUEUED, "The queue had lost this task; queued it again.")
            enqueue_task(task_id)
            reenqueued.append(task_id)
    return reenqueued


def close_abandoned_jobs(task_id: str) -> None:
    """Mark the dead worker's queue row failed, so the queue's own records stop saying RUNNING."""
    if not isinstance(run_task.get_backend(), DatabaseBackend):
        return
    for job in jobs_for(task_id).filter(status=TaskResultStatus.RUNNING):
        job.set_failed(WorkerLost("The worker running this job stopped; the reaper took the task over."))
