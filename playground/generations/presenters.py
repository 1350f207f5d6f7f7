"""A task as clients see it: one shape for the API's answers and for webhook bodies, so the two can
never drift apart; and the ETag that lets a poll of an unchanged task cost no body."""

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.cache import parse_etags, patch_cache_control
from django.utils.dateparse import parse_datetime

from playground.catalog.models import CatalogEntry

from .fairness import PlaceInLine
from .models import TERMINAL, Batch, Status, Task, TaskEvent
from .outputs import present_output, public_base, token_window


def _number(value) -> float | None:
    return float(value) if value is not None else None


# The columns task_body and task_etag read: a view that only presents a task loads just these
# (`Task.objects.only(*BODY_FIELDS)`), which makes a poll's query cheaper to build and to read.
BODY_FIELDS = (
    *(
        "request_id",
        "status",
        "model",
        "cost_estimate",
        "cost_actual",
        "output",
        "error",
        "progress",
        "batch",
    ),
    *("created_at", "started_at", "finished_at", "updated_at", "model__slug", "owner__username"),
)


def percent(progress: float | None) -> int | None:
    """Whole percents, rounded down (never 100 before it has ended; 0.29 * 100 is 28.999…)."""
    return None if progress is None else int(round(progress * 100, 6))


def shown_progress(status: str, progress: float | None) -> float | None:
    """How far a task is, as clients see it: while it runs, what its engine said (None: it cannot
    tell); 1 once it succeeded; None otherwise (queued, failed, cancelled)."""
    if status == Status.SUCCEEDED:
        return 1.0
    if status == Status.PROCESSING and progress is not None:
        return round(float(progress), 3)
    return None


def task_body(request: HttpRequest | None, task: Task, *, queue_position: int | None) -> dict:
    """The task as `GET /api/v1/tasks/{id}` returns it. Output URLs are absolute when there is a
    request or PLAYGROUND_PUBLIC_URL (a webhook has no request: set it for absolute URLs there).
    `queue_position`: its place in line while it is queued (`fairness.queue_position`)."""
    return {
        "request_id": task.request_id,
        "task_id": task.pk,
        "status": task.status,
        "model": task.model.slug,
        "cost_estimate": _number(task.cost_estimate),
        "cost_actual": _number(task.cost_actual),
        "output": present_output(request, task.pk, task.output) if task.status == Status.SUCCEEDED else None,
        "error": task.error,
        "created_at": task.created_at.isoformat(),
        "started_at": task.started_at.isoformat() if task.started_at else None,
        "finished_at": task.finished_at.isoformat() if task.finished_at else None,
        "created_by": task.owner.get_username(),  # not MindVideo's: who ran it (teams share tasks)
        # Not MindVideo's either (its clients ignore them): live progress.
        "progress": shown_progress(task.status, task.progress),
        "queue_position": queue_position if task.status == Status.QUEUED else None,
        "batch_id": task.batch_id,  # not MindVideo's: the batch it was submitted in, else null
    }


def task_etag(request: HttpRequest | None, task: Task, queue_position: int | None) -> str:
    """The ETag of `task_body`, from the row in hand (no query); see `body_etag`."""
    return body_etag(
        request,
        task.pk,
        task.status,
        task.updated_at,
        task.progress,
        queue_position,
        task.model.slug,
        task.owner.get_username(),
    )


def body_etag(
    request: HttpRequest | None,
    task_id: str,
    status: str,
    updated_at,
    progress: float | None,
    queue_position: int | None,
    model_slug: str,
    owner_username: str,
) -> str:
    """An ETag for what `task_body` shows of a task, from its columns as the ORM or `task_stamp`
    reads them.

    Every change of status, cost, output or error goes through `lifecycle.transition`, which moves
    `updated_at`; progress moves without it, and the place in line with other tasks, so both count
    as shown. Output URLs also depend on the origin they are built for and on the time window of
    their tokens (a new one each PLAYGROUND_FILE_URL_WINDOW), so both count (`stamp_etag`). The
    model's slug, which the body names and the admin can change, and the owner's username count too.
    """
    position = queue_position if status == Status.QUEUED else None
    shown = (shown_progress(status, progress), position, model_slug, owner_username)
    return stamp_etag(request, task_id, status, updated_at, *shown)


def stamp_etag(request: HttpRequest | None, task_id: str, status: str, updated_at, *shown: object) -> str:
    """An ETag of what a client is shown of a task: its id, status and `updated_at`, the origin and
    time window of its output URLs, and `shown`, whatever else the view shows."""
    parts = (task_id, _instant(updated_at), status, token_window(), public_base(request), *shown)
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=12).hexdigest()
    return f'"{digest}"'


def _instant(value: datetime | str) -> str:
    """A timestamp as the ORM or a raw cursor gives it (SQLite's is text), in one spelling."""
    return _moment(value).isoformat()


def _moment(value: datetime | str) -> datetime:
    """A timestamp as the ORM or a raw cursor gives it (SQLite's is naive UTC text), aware in UTC."""
    moment = parse_datetime(value) if isinstance(value, str) else value
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def panel_etag(
    request: HttpRequest,
    task_id: str,
    status: str,
    updated_at,
    last_event_id: int,
    model_updated_at,
    progress: float | None,
    place: PlaceInLine | None,
    silent: bool = False,
) -> str:
    """The status panel's ETag: the task's (see `body_etag`), its newest event, the model's title
    (`updated_at`), its progress, its place in line and whether the worker has gone silent
    (`jobs.worker_is_silent`). The same from the full panel's rows and a `task_stamp`."""
    shown = (last_event_id, _instant(model_updated_at), shown_progress(status, progress), place, silent)
    return stamp_etag(request, task_id, status, updated_at, *shown)


@dataclass(frozen=True)
class TaskStamp:
    """What decides whether a task as a poll shows it (the API's body, the status panel) changed,
    read in one raw statement (`task_stamp`)."""

    status: str
    updated_at: Any
    cost_known: bool
    model_updated_at: Any
    last_event_id: int
    owner_password: str
    owner_is_active: bool
    model_slug: str
    lease_expires_at: datetime | None
    owner_username: str
    progress: float | None
    created_at: datetime

    @property
    def settled(self) -> bool:
        return self.status in TERMINAL and self.cost_known

    @property
    def owner(self) -> AbstractBaseUser:
        """The owner's account as far as the session check reads it (`password`, `is_active`)."""
        return get_user_model()(password=self.owner_password, is_active=self.owner_is_active)

    def body_etag(self, request: HttpRequest, task_id: str, queue_position: int | None) -> str:
        """`task_etag` of the task as stamped, at `queue_position` in line."""
        return body_etag(
            request,
            task_id,
            self.status,
            self.updated_at,
            self.progress,
            queue_position,
            self.model_slug,
            self.owner_username,
        )


def task_stamp(task_id: str, scope: dict[str, Any]) -> TaskStamp | None:
    """The stamp of task `task_id` within `scope` (`Caller.scope_fields()`: column values the task
    must have), or None. One statement written out by hand: a poll that finds nothing new is most
    of what a polling client costs, and building this query with the ORM took longer than running
    it (~1.2 ms of ~2 ms). Also the account's session columns, for a status poll's session check."""
    shape = tuple((name, value is None) for name, value in scope.items())
    with connection.cursor() as cursor:
        cursor.execute(
            _stamp_sql(shape), [task_id, *(value for value in scope.values() if value is not None)]
        )
        row = cursor.fetchone()
    if row is None or row[6] is None:
        return None
    status, updated_at, cost, model_updated_at, password, is_active, last_event_id, slug = row[:8]
    lease, username, progress, created_at = row[8:]
    lease = None if lease is None else _moment(lease)
    return TaskStamp(
        status,
        updated_at,
        cost is not None,
        model_updated_at,
        last_event_id,
        password,
        bool(is_active),
        slug,
        lease,
        username,
        progress,
        _moment(created_at),
    )


@cache
def _stamp_sql(scope: tuple[tuple[str, bool], ...]) -> str:
    """`task_stamp`'s statement for a scope on these task fields, each (name, whether it must be
    NULL). Only names from the models' metadata, quoted, go into the text; every value is a
    parameter."""
    q = connection.ops.quote_name
    task, event, entry = Task._meta, TaskEvent._meta, CatalogEntry._meta
    user = get_user_model()._meta

    def column(meta, name: str) -> str:
        return q(meta.get_field(name).column)

    where = " AND ".join(f"t.{column(task, name)} {'IS NULL' if null else '= %s'}" for name, null in scope)
    return (
        f"SELECT t.{column(task, 'status')}, t.{column(task, 'updated_at')},"  # noqa: S608 (names only)
        f" t.{column(task, 'cost_actual')}, m.{column(entry, 'updated_at')},"
        f" u.{column(user, 'password')}, u.{column(user, 'is_active')},"
        f" (SELECT MAX(e.{column(event, 'id')}) FROM {q(event.db_table)} e"
        f" WHERE e.{column(event, 'task')} = t.{column(task, 'id')}),"
        f" m.{column(entry, 'slug')}, t.{column(task, 'lease_expires_at')},"
        f" u.{column(user, user.model.USERNAME_FIELD)},"
        f" t.{column(task, 'progress')}, t.{column(task, 'created_at')}"
        f" FROM {q(task.db_table)} t"
        f" JOIN {q(entry.db_table)} m ON m.{column(entry, 'id')} = t.{column(task, 'model')}"
        f" JOIN {q(user.db_table)} u ON u.{q(user.pk.column)} = t.{column(task, 'owner')}"
        f" WHERE t.{column(task, 'id')} = %s AND {where}"
    )


class RenderedBodies:
    """The API bodies this process rendered lately, by ETag (bounded, oldest dropped first).

    An ETag names exactly what a client is shown of a task (`task_etag`): a 304 already promises
    that a body rendered for an ETag is still the body. So a poll without If-None-Match, what a
    MindVideo client sends, is answered from here after one raw statement (`task_stamp`), and only
    a task that changed since is loaded and rendered again. Callers check the scope first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._bodies: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, etag: str) -> bytes | None:
        with self._lock:
            body = self._bodies.get(etag)
            if body is not None:
                self._bodies.move_to_end(etag)
            return body

    def put(self, etag: str, body: bytes) -> bytes:
        with self._lock:
            self._bodies[etag] = body
            self._bodies.move_to_end(etag)
            while len(self._bodies) > self.size:
                self._bodies.popitem(last=False)
        return body

    def clear(self) -> None:
        with self._lock:
            self._bodies.clear()


rendered_bodies = RenderedBodies(size=2048)  # at ~0.5 kB a body, about 1 MB a process at most


def conditional_response(request: HttpRequest, etag: str, render: Callable[[], HttpResponse]) -> HttpResponse:
    """304 Not Modified (no body, nothing rendered) when the request's If-None-Match already names
    `etag` (weak comparison; `*` matches too), else `render()`. Either way with the ETag and
    `Cache-Control: private, no-cache`: clients may keep a copy but must ask each time."""
    response = not_modified(request, etag) or render()
    response["ETag"] = etag
    patch_cache_control(response, private=True, no_cache=True)
    return response


def not_modified(request: HttpRequest, etag: str) -> HttpResponse | None:
    """The 304 of `conditional_response` when If-None-Match names `etag`, else None."""
    tags = {tag.removeprefix("W/") for tag in parse_etags(request.headers.get("If-None-Match", ""))}
    if etag not in tags and "*" not in tags:
        return None
    response = HttpResponseNotModified()
    response["ETag"] = etag
    patch_cache_control(response, private=True, no_cache=True)
    return response


def batch_body(batch: Batch) -> dict:
    """A batch as `POST /api/v1/batches` answers it (new, or replayed): its tasks' ids in cell
    order (row by row over `axes`, the last axis fastest) and their total estimate."""
    return {
        "batch_id": batch.pk,
        "task_ids": list(batch.task_ids),
        "cost_estimate": _number(batch.cost_estimate),
        "axes": batch.axes,
        "left_out": batch.left_out,
        "created_at": batch.created_at.isoformat(),
    }


def batch_detail_body(request: HttpRequest | None, batch: Batch, tasks: list[Task], positions: dict) -> dict:
    """A batch as `GET /api/v1/batches/{id}` shows it: each cell's place in the grid and its task
    as `task_body` shows it (`tasks`: the batch's, in any order; `positions`: the queued ones'
    places in line)."""
    by_id = {task.pk: task for task in tasks}
    cells, counts = [], dict.fromkeys(Status.values, 0)
    for index, task_id in enumerate(batch.task_ids):
        task = by_id.get(task_id)
        if task is None:  # deleted since (e.g. by an admin): the cell stays, empty
            continue
        values = batch.cell_values(index)
        model = values.pop("model")
        counts[task.status] += 1
        cells.append(
            {
                "model": model,
                "values": values,
                "task": task_body(request, task, queue_position=positions.get(task_id)),
            }
        )
    return {**batch_body(batch), "counts": counts, "cells": cells}
