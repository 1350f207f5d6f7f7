"""The task lifecycle: which status may follow which, the one function that moves a task, and what
it records on the way (its events, and the charge of a task that ended before it was known).

`transition` is a conditional UPDATE checked by its row count, so two writers racing (a cancel and a
completion) leave exactly one end state. When a task ends, `task_ended` is sent once that end has
committed: whatever must follow a task's end (its webhook, see `webhooks.py`) subscribes to it,
and this module knows nothing of them.
"""

from decimal import Decimal
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.dispatch import Signal
from django.utils import timezone

from playground.catalog.pricing import dollars

from .models import TERMINAL, Status, Task, TaskEvent

# Which status may follow which. processing -> queued is the reaper re-queuing a task whose
# worker died.
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.QUEUED: frozenset({Status.PROCESSING, Status.CANCELLED, Status.FAILED}),
    Status.PROCESSING: frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.QUEUED}),
    Status.SUCCEEDED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
}

# Sent (sender=Task, task_id=..., status=the end state) once a task's end has committed, to every
# receiver even if one raises (`send_robust`): a receiver cannot undo or hide the end.
task_ended = Signal()


def allowed_sources(target: str) -> list[str]:
    return [source for source, targets in TRANSITIONS.items() if target in targets]


def transition(
    task_id: str, target: str, *, message: str = "", where: Q | None = None, **fields: Any
) -> bool:
    """Move a task to `target` if its current status allows it, recording the event.

    Returns False (and changes nothing) when the task is no longer in a state `target` may follow,
    e.g. a completion arriving after a cancel, or when it no longer meets `where` (e.g. the worker's
    attempt was reaped and the task started again elsewhere). Only a processing task holds a lease.
    """
    now = timezone.now()
    if target == Status.PROCESSING:
        fields.setdefault("started_at", now)
        fields.setdefault("progress", None)  # each attempt's work starts from nothing
    else:
        fields.setdefault("lease_expires_at", None)
    if target in TERMINAL:
        fields.setdefault("finished_at", now)
    rows = Task.objects.filter(pk=task_id, status__in=allowed_sources(target))
    if where is not None:
        rows = rows.filter(where)
    with transaction.atomic():
        moved = rows.update(status=target, updated_at=now, **fields)
        if moved:
            TaskEvent.objects.create(task_id=task_id, kind="status", status=target, message=message[:500])
            if target in TERMINAL:
                # robust: a failure of what follows the end must not undo or hide the task's end.
                announce = partial(task_ended.send_robust, sender=Task, task_id=task_id, status=target)
                transaction.on_commit(announce, robust=True)
    return bool(moved)


def record_message(task_id: str, status: str, message: str) -> None:
    TaskEvent.objects.create(task_id=task_id, kind="message", status=status, message=message[:500])


def charge_sentence(reason: str, cost: Decimal | None, estimate: Decimal) -> str:
    """ "<reason>: its charge of $0.0987 stands." / ": nothing was charged." / not known yet."""
    if cost is None:
        return (
            f"{reason}: what it was charged is not known yet, so its estimate of {dollars(estimate)} "
            "counts against budgets until it is."
        )
    if cost == 0:
        return f"{reason}: nothing was charged."
    return f"{reason}: its charge of {dollars(cost)} stands."


def record_charge(task_id: str, cost: Decimal | None, reason: str) -> bool:
    """Record what an ended task whose charge was not known yet (cancelled or failed while an
    upstream platform had it) was billed, with the reason in its events. Only the first answer
    counts: a task whose charge is known already is left alone. `cost` None: still not known (the
    event says so, and spend checks go on counting the estimate). Returns whether it recorded a cost."""
    unknown = Task.objects.filter(pk=task_id, status__in=TERMINAL, cost_actual__isnull=True)
    with transaction.atomic():
        row = unknown.values("status", "cost_estimate").first()
        if row is None:
            return False
        if cost is not None and not unknown.update(cost_actual=cost, updated_at=timezone.now()):
            return False  # another settled it first
        record_message(task_id, row["status"], charge_sentence(reason, cost, row["cost_estimate"]))
    return cost is not None
