"""A task as clients see it: one shape for the API's answers and for webhook bodies, so the two can
never drift apart; and the ETag that lets a poll of an unchanged task cost no body."""

import hashlib
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.cache import parse_etags, patch_cache_control

from .models import Status, Task
from .outputs import present_output, public_base, token_window


def _number(value) -> float | None:
    return float(value) if value is not None else None


# The columns task_body and task_etag read: a view that only presents a task loads just these
# (`Task.objects.only(*BODY_FIELDS)`), which makes a poll's query cheaper to build and to read.
BODY_FIELDS = (
    *("request_id", "status", "model", "cost_estimate", "cost_actual", "output", "error"),
    *("created_at", "started_at", "finished_at", "updated_at", "model__slug"),
)


def task_body(request: HttpRequest | None, task: Task) -> dict:
    """The task as `GET /api/v1/tasks/{id}` returns it. Output URLs are absolute when there is a
    request or PLAYGROUND_PUBLIC_URL (a webhook has no request: set it for absolute URLs there)."""
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
    }


def task_etag(request: HttpRequest | None, task: Task, *shown: object) -> str:
    """An ETag for what a client is shown of `task`, from the row in hand (no query).

    Every change of status, cost, output or error goes through `lifecycle.transition`, which moves
    `updated_at`. Output URLs also depend on the origin they are built for and on the time window of
    their tokens (a new one each PLAYGROUND_FILE_URL_WINDOW), so both count. `shown` adds whatever
    else a view shows, e.g. the status panel's events.
    """
    parts = (task.pk, task.updated_at.isoformat(), task.status, token_window(), public_base(request), *shown)
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=12).hexdigest()
    return f'"{digest}"'


def conditional_response(request: HttpRequest, etag: str, render: Callable[[], HttpResponse]) -> HttpResponse:
    """304 Not Modified (no body, nothing rendered) when the request's If-None-Match already names
    `etag` (weak comparison; `*` matches too), else `render()`. Either way with the ETag and
    `Cache-Control: private, no-cache`: clients may keep a copy but must ask each time."""
    tags = {tag.removeprefix("W/") for tag in parse_etags(request.headers.get("If-None-Match", ""))}
    response = HttpResponseNotModified() if etag in tags or "*" in tags else render()
    response["ETag"] = etag
    patch_cache_control(response, private=True, no_cache=True)
    return response
