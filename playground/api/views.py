"""JSON views of `/api/v1`, wire-compatible with the MindVideo task API. Views parse the request,
call one service and present the result; the rules live in `generations.services`."""

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta

from django.core.exceptions import RequestDataTooBig
from django.core.files.storage import default_storage
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from playground.access.callers import file_caller
from playground.catalog.models import CatalogEntry
from playground.catalog.validation import FieldError, text_errors
from playground.generations.batches import submit_batch
from playground.generations.fairness import queue_position, queue_positions
from playground.generations.inputs import input_token_is_valid
from playground.generations.models import Batch, InputFile, Status, Task
from playground.generations.openapi import openapi_document
from playground.generations.outputs import public_base, token_is_valid
from playground.generations.presenters import (
    BODY_FIELDS,
    batch_body,
    batch_detail_body,
    conditional_response,
    not_modified,
    rendered_bodies,
    task_body,
    task_etag,
    task_stamp,
)
from playground.generations.services import SubmitError, TaskConflict, cancel_task, submit_task
from playground.generations.sharing import NotShareable, share_task, share_url, unshare_task
from playground.storage import serve_stored

from .auth import api_endpoint
from .errors import ApiError
from .json_body import TooDeep, parse_task_body

MAX_PAGE_SIZE = 100
MAX_CURSOR_LENGTH = 200  # a cursor is ~90 characters
CURSOR_TASK_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
EARLIEST_CURSOR = datetime(2000, 1, 1, tzinfo=UTC)


def model_body(entry: CatalogEntry, *, detail: bool = False) -> dict:
    body = {
        "slug": entry.slug,
        "title": entry.title,
        "kind": entry.kind,
        "output_key": entry.output_key,
        "pricing": entry.pricing,
        "updated_at": entry.updated_at.isoformat(),
    }
    if detail:
        body.update(input_schema=entry.input_schema, example_input=entry.example_input, roles=entry.roles)
    return body


def read_json(request: HttpRequest, *, optional: bool = False) -> dict:
    """The body of a task request as a JSON object whose every string is acceptable text (see
    `catalog.text`): else 400 (not JSON, or nested too deep) or 422 naming the field. `optional`:
    an empty body is an empty object."""
    try:
        raw = request.body
    except RequestDataTooBig as exc:
        raise ApiError(413, "body_too_large", "The request body is larger than this server accepts.") from exc
    if optional and not raw.strip():
        return {}
    try:
        data = parse_task_body(raw or b"null")  # data URIs stay in `raw`, uncopied
    except TooDeep as exc:
        raise ApiError(400, "malformed_json", f"The body cannot be read: {exc}.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"The body is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "malformed_json", "The body must be a JSON object with `model` and `input`.")
    if errors := text_errors(data):
        raise ApiError(422, "invalid_text", errors[0].message, errors[0].field, errors)
    return data


def owned_task(request: HttpRequest, task_id: str) -> Task:
    """The caller's task, with what the API shows of it (the input, which can be large, is not
    loaded); anyone else's is exactly as missing as a task that never existed."""
    try:
        return (
            Task.objects.select_related("model", "owner")
            .only(*BODY_FIELDS)
            .get(request.caller.task_scope(), pk=task_id)
        )
    except Task.DoesNotExist:
        raise ApiError(404, "task_not_found", "No such task.") from None


@api_endpoint("GET", "POST")
def tasks(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        return create_task(request)
    return list_tasks(request)


def create_task(request: HttpRequest) -> JsonResponse:
    data = read_json(request)
    try:
        submission = submit_task(
            request.caller.owner,
            data.get("model"),
            data.get("input", {}),
            request_id=request.request_id,
            idempotency_key=request.headers.get("Idempotency-Key"),
            api_key=request.caller.api_key,
            webhook_url=data.get("webhook_url", ""),
            team_id=request.caller.team_id,
            base_url=public_base(request),
        )
    except SubmitError as exc:
        raise _api_error(exc) from exc
    task = submission.task
    position = queue_position(task.pk, task.status, task.created_at)
    body = task_body(request, task, queue_position=position)
    response = JsonResponse(body, status=201 if submission.created else 200)
    response["Location"] = reverse("api-task", args=[task.pk])
    return response


def _api_error(exc: SubmitError) -> ApiError:
    field = exc.field or ("Idempotency-Key" if exc.code == "invalid_idempotency_key" else None)
    return ApiError(exc.status, exc.code, exc.message, field, exc.errors)


@api_endpoint("POST")
def batches(request: HttpRequest) -> JsonResponse:
    """A task per cell of a grid (models x varied values), all or none (`generations.batches`)."""
    data = read_json(request)
    try:
        submission = submit_batch(
            request.caller.owner,
            data,
            request_id=request.request_id,
            idempotency_key=request.headers.get("Idempotency-Key"),
            api_key=request.caller.api_key,
            team_id=request.caller.team_id,
            base_url=public_base(request),
        )
    except SubmitError as exc:
        raise _api_error(exc) from exc
    response = JsonResponse(batch_body(submission.batch), status=201 if submission.created else 200)
    response["Location"] = reverse("api-batch", args=[submission.batch.pk])
    return response


@api_endpoint("GET")
def batch_detail(request: HttpRequest, batch_id: str) -> JsonResponse:
    """The batch with each cell's task; another workspace's batch is as missing as none."""
    scope = request.caller.task_scope()
    batch = Batch.objects.filter(scope, pk=batch_id).first()
    if batch is None:
        raise ApiError(404, "batch_not_found", "No such batch.")
    tasks = list(
        Task.objects.filter(scope, batch_id=batch.pk).select_related("model", "owner").only(*BODY_FIELDS)
    )
    return JsonResponse(batch_detail_body(request, batch, tasks, queue_positions(tasks)))


def _cursor(task: Task) -> str:
    raw = f"{task.created_at.isoformat()}|{task.pk}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after_cursor(cursor: str) -> Q:
    """The tasks after `cursor` (one `_cursor` made); 400 `invalid_cursor` for anything else,
    whatever its shape: garbage, base64 of garbage, a time without a zone, or one no task of ours
    has (before 2000 or after tomorrow: the calendar's edges overflow once moved to UTC or into a
    database), an id that no task could have."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_text, task_id = raw.split("|", 1)
        created = datetime.fromisoformat(created_text)
        if created.tzinfo is None or not CURSOR_TASK_ID.fullmatch(task_id):
            raise ValueError("not a cursor")
        created = created.astimezone(UTC)
        if not EARLIEST_CURSOR <= created <= timezone.now() + timedelta(days=1):
            raise ValueError("no task was made then")
    except (binascii.Error, ValueError, UnicodeDecodeError, OverflowError) as exc:
        raise ApiError(400, "invalid_cursor", "The cursor is not one this API returned.", "cursor") from exc
    return Q(created_at__lt=created) | Q(created_at=created, pk__lt=task_id)


def choice_filter(params, name: str, choices: list[str]) -> str:
    """A query filter that must be one of `choices` (empty = not given); else 422 naming it."""
    value = params.get(name, "")
    if value and value not in choices:
        listed = ", ".join(choices)
        raise ApiError(
            422,
            "invalid_filter",
            f"{name} must be one of: {listed}.",
            name,
            [FieldError(name, f"Must be one of: {listed}.", "invalid_choice")],
        )
    return value


def list_tasks(request: HttpRequest) -> JsonResponse:
    params = request.GET
    query = Task.objects.filter(request.caller.task_scope()).select_related("model", "owner")
    status = choice_filter(params, "status", Status.values)
    if status:
        query = query.filter(status=status)
    if params.get("model"):
        query = query.filter(model__slug=params["model"])
    try:
        limit = int(params.get("limit", 20))
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError
    except ValueError as exc:
        raise ApiError(
            422, "invalid_limit", f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}.", "limit"
        ) from exc
    if params.get("cursor"):
        query = query.filter(_after_cursor(params["cursor"]))
    page = list(query.order_by("-created_at", "-pk")[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    positions = queue_positions(page)
    return JsonResponse(
        {
            "data": [task_body(request, t, queue_position=positions.get(t.pk)) for t in page],
            "next_cursor": _cursor(page[-1]) if more else None,
        }
    )


@api_endpoint("GET")
def task_detail(request: HttpRequest, task_id: str) -> HttpResponse:
    """The task, with an ETag. Every poll starts with one raw statement (`task_stamp`, the caller's
    scope included), and a queued task's with a second, its place in line: a poll whose
    If-None-Match names the ETag gets 304, any other the body this process last rendered for that
    ETag (`rendered_bodies`). Only a task that changed since is loaded and rendered again."""
    stamp = task_stamp(task_id, request.caller.scope_fields())
    etag = position = None
    if stamp is not None:
        position = queue_position(task_id, stamp.status, stamp.created_at)
        etag = stamp.body_etag(request, task_id, position)
    if etag and (unchanged := not_modified(request, etag)):
        return unchanged
    if not etag or (body := rendered_bodies.get(etag)) is None:
        task = owned_task(request, task_id)
        if stamp is None or task.status != stamp.status:  # it moved on between the two reads
            position = queue_position(task.pk, task.status, task.created_at)
        etag = task_etag(request, task, position)
        body = rendered_bodies.put(
            etag, JsonResponse(task_body(request, task, queue_position=position)).content
        )
    return conditional_response(request, etag, lambda: HttpResponse(body, content_type="application/json"))


@api_endpoint("GET")
def task_events(request: HttpRequest, task_id: str) -> JsonResponse:
    task = owned_task(request, task_id)
    events = [
        {
            "id": event.pk,
            "type": event.kind,
            "status": event.status,
            "message": event.message,
            "created_at": event.created_at.isoformat(),
        }
        for event in task.events.all()
    ]
    return JsonResponse({"data": events})


@api_endpoint("POST")
def task_cancel(request: HttpRequest, task_id: str) -> JsonResponse:
    task = owned_task(request, task_id)
    try:
        task = cancel_task(task)
    except TaskConflict as exc:
        raise ApiError(409, "task_not_cancellable", str(exc)) from exc
    return JsonResponse(task_body(request, task, queue_position=None))  # it has ended


@api_endpoint("POST", "DELETE")
def task_share(request: HttpRequest, task_id: str) -> HttpResponse:
    """POST: the task's public page (201 new, 200 when it was shared already: the same URL).
    DELETE: the page and its files answer 404 from now on (204, shared or not)."""
    task = owned_task(request, task_id)
    if request.method == "DELETE":
        unshare_task(task)
        return HttpResponse(status=204)
    data = read_json(request, optional=True)
    show_parameters = data.get("show_parameters")
    if show_parameters is not None and not isinstance(show_parameters, bool):
        raise ApiError(422, "invalid_input", "show_parameters must be true or false.", "show_parameters")
    if not request.caller.may_share():
        raise ApiError(403, "sharing_not_allowed", "This caller may not share tasks.")
    try:
        shared = share_task(task, show_parameters=show_parameters)
    except NotShareable as exc:
        raise ApiError(409, "task_not_shareable", str(exc)) from exc
    body = {
        "url": share_url(request, shared.share),
        "created": shared.share.created_at.isoformat(),
        "show_parameters": shared.share.show_parameters,
    }
    return JsonResponse(body, status=201 if shared.created else 200)


@api_endpoint("GET")
def models(request: HttpRequest) -> JsonResponse:
    entries = request.caller.entries()
    kind = choice_filter(request.GET, "kind", CatalogEntry.Kind.values)
    if kind:
        entries = entries.filter(kind=kind)
    return JsonResponse({"data": [model_body(entry) for entry in entries]})


@api_endpoint("GET")
def model_detail(request: HttpRequest, slug: str) -> JsonResponse:
    entry = request.caller.entries().filter(slug=slug).first()
    if entry is None:
        raise ApiError(404, "model_not_found", "No such model.")
    return JsonResponse(model_body(entry, detail=True))


@require_GET
def openapi(request: HttpRequest) -> JsonResponse:
    return JsonResponse(openapi_document(request))


# Output and input files may be kept by the browser that was allowed to see them, for a day.
PRIVATE_DAY = "private, max-age=86400"


@require_GET
def task_file(request: HttpRequest, task_id: str, name: str) -> HttpResponse:
    """An output file: with a valid signed token for anyone holding the URL, otherwise only for its
    caller (`access.callers.file_caller`: session or Bearer key). Everyone else gets 404, as for a
    file that does not exist. `?download`: served to be saved rather than shown."""
    task = get_object_or_404(
        Task.objects.only("id", "owner_id", "demo_pass_id", "guest", "output"), pk=task_id
    )
    allowed = token_is_valid(task_id, name, request.GET.get("token", "")) or _caller_sees(request, task)
    item = next(
        (i for items in (task.output or {}).values() for i in items if i["file"].rsplit("/", 1)[-1] == name),
        None,
    )
    if not allowed or item is None or not default_storage.exists(item["file"]):
        raise Http404("No such file.")
    return serve_stored(
        item["file"],
        item["content_type"],
        f"{task_id}-{name}",
        cache=PRIVATE_DAY,
        attachment="download" in request.GET,
    )


def _caller_sees(request: HttpRequest, task: Task) -> bool:
    caller = file_caller(request)
    return caller is not None and caller.sees(task)


@require_GET
def input_file(request: HttpRequest, input_id: str, name: str) -> HttpResponse:
    """An input file (an upload or data URI stored at submit): with a valid signed token for
    anyone holding the URL (copy-as-code, the upstream platform), otherwise only for its owner
    (`Caller.owns_files_of`). Everyone else gets 404, as for a file that does not exist. Served as
    the type its content was checked to be, in a sandbox: it came from a user."""
    row = InputFile.objects.filter(pk=input_id, name=name).first()
    allowed = row is not None and (
        input_token_is_valid(input_id, name, request.GET.get("token", ""))
        or ((caller := file_caller(request)) is not None and caller.owns_files_of(row.owner_id))
    )
    if not allowed or not default_storage.exists(row.file):
        raise Http404("No such file.")
    response = serve_stored(row.file, row.content_type, row.name, cache=PRIVATE_DAY)
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
