"""Business rules for tasks, shared by the API and the browser: submit, transition, cancel.

No transaction here spans engine work or network I/O. `transition` is a conditional UPDATE checked
by its row count, so two writers racing (a cancel and a completion) leave exactly one end state.
"""

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from playground.catalog.models import CatalogEntry
from playground.catalog.pricing import estimate_cost
from playground.catalog.validation import FieldError, field_path, validate_input
from playground.engines.media import MediaError, check_media_value, iter_media_values

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
MAX_IDEMPOTENCY_KEY_LENGTH = 255


class SubmitError(Exception):
    """A submission refused before any task exists. `status` is the HTTP status it maps to."""

    def __init__(self, status: int, code: str, message: str, errors: list[FieldError] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or []

    @property
    def field(self) -> str | None:
        return self.errors[0].field if self.errors else None


class TaskConflict(Exception):
    """The task is in a state that does not allow the request (e.g. cancel after it ended)."""


@dataclass(frozen=True)
class Submission:
    task: Task
    created: bool  # False: an idempotent replay of an earlier request


def allowed_sources(target: str) -> list[str]:
    return [source for source, targets in TRANSITIONS.items() if target in targets]


def transition(task_id: str, target: str, *, message: str = "", **fields: Any) -> bool:
    """Move a task to `target` if its current status allows it, recording the event.

    Returns False (and changes nothing) when the task is no longer in a state `target` may follow,
    e.g. a completion arriving after a cancel.
    """
    now = timezone.now()
    if target == Status.PROCESSING:
        fields.setdefault("started_at", now)
    if target in TERMINAL:
        fields.setdefault("finished_at", now)
    with transaction.atomic():
        moved = Task.objects.filter(pk=task_id, status__in=allowed_sources(target)).update(
            status=target, updated_at=now, **fields
        )
        if moved:
            TaskEvent.objects.create(task_id=task_id, kind="status", status=target, message=message[:500])
    return bool(moved)


def record_message(task_id: str, status: str, message: str) -> None:
    TaskEvent.objects.create(task_id=task_id, kind="message", status=status, message=message[:500])


def request_hash(model_slug: str, data: Any) -> str:
    canonical = json.dumps({"model": model_slug, "input": data}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def engine_for(entry: CatalogEntry) -> str:
    """PLAYGROUND_ENGINE overrides every entry; otherwise the entry's own, else `local`."""
    return settings.PLAYGROUND_ENGINE or entry.engine or "local"


def media_errors(entry: CatalogEntry, data: dict) -> list[FieldError]:
    errors = []
    for item in iter_media_values(entry.input_schema, entry.roles, data):
        try:
            check_media_value(
                item,
                max_bytes=settings.PLAYGROUND_MAX_INPUT_IMAGE_BYTES,
                max_pixels=settings.PLAYGROUND_MAX_INPUT_IMAGE_PIXELS,
            )
        except MediaError as exc:
            errors.append(FieldError(field_path(item.path), exc.message, exc.code))
    return errors


def check_input(entry: CatalogEntry, data: Any) -> list[FieldError]:
    """Everything wrong with `data` for `entry`: the schema, cross-field rules, then media."""
    return validate_input(entry, data) or media_errors(entry, data)


def find_model(slug: Any) -> CatalogEntry:
    entry = None
    if isinstance(slug, str) and slug:
        entry = CatalogEntry.objects.filter(slug=slug, is_active=True).first()
    if entry is None:
        raise SubmitError(
            422,
            "unknown_model",
            "No such model.",
            [FieldError("model", "No such model: see GET /api/v1/models.", "unknown_model")],
        )
    return entry


def _replay(owner, idempotency_key: str, digest: str) -> Submission | None:
    existing = Task.objects.filter(owner=owner, idempotency_key=idempotency_key).first()
    if existing is None:
        return None
    if existing.request_hash != digest:
        raise SubmitError(
            409,
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request.",
        )
    return Submission(existing, created=False)


def submit_task(
    owner,
    model_slug: Any,
    data: Any,
    *,
    request_id: str,
    idempotency_key: str | None = None,
    api_key=None,
    source: str = "api",
) -> Submission:
    """Validate, price and queue a task; replay the original for a repeated Idempotency-Key.

    A refused request (SubmitError) never consumes the key. Concurrent requests with one key create
    one task: the unique constraint decides, and the losers replay the winner.
    """
    if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        raise SubmitError(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters.",
        )
    digest = request_hash(model_slug if isinstance(model_slug, str) else repr(model_slug), data)
    if idempotency_key and (replayed := _replay(owner, idempotency_key, digest)):
        return replayed
    entry = find_model(model_slug)
    errors = check_input(entry, data)
    if errors:
        raise SubmitError(422, "invalid_input", errors[0].message, errors)
    try:
        with transaction.atomic():
            task = Task.objects.create(
                owner=owner,
                api_key=api_key,
                model=entry,
                input=data,
                engine=engine_for(entry),
                cost_estimate=estimate_cost(entry, data),
                request_id=request_id,
                idempotency_key=idempotency_key or None,
                request_hash=digest,
                source=source,
            )
            TaskEvent.objects.create(task=task, kind="status", status=Status.QUEUED, message="Queued.")
            transaction.on_commit(lambda: enqueue_task(task.pk))
    except IntegrityError:
        if idempotency_key and (replayed := _replay(owner, idempotency_key, digest)):
            return replayed
        raise
    return Submission(task, created=True)


def enqueue_task(task_id: str) -> None:
    from .jobs import run_task

    run_task.enqueue(task_id)


def cancel_task(task: Task) -> Task:
    """Cancel a queued or processing task (the engine stops at its next check); 409 if it ended."""
    if not transition(task.pk, Status.CANCELLED, message="Cancelled by the user.", cost_actual=Decimal(0)):
        raise TaskConflict(f"The task has already {Task.objects.get(pk=task.pk).status}.")
    task.refresh_from_db()
    return task
