"""A batch's grid in the browser: its page (labelled axes, a cell per task, each cell polling until
its own task ends), a cell's partial, and the grid as one labelled PNG or a zip of its outputs.

A batch is seen by whoever sees its tasks (`Caller.task_scope`); anyone else gets 404, for the page,
its cells and its downloads alike.
"""

from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET
from zipstream import ZipStream

from playground.access.callers import AccessEnded, confirm_session, session_caller
from playground.generations.models import TERMINAL, Batch, Task
from playground.generations.presenters import conditional_response, not_modified, stamp_etag, task_stamp

from .batch_grid import batch_grid_context, batch_tasks, grid_cell, grid_labels, grid_png, zip_entries
from .views import HTMX_STOP_POLLING, TASK_GONE, _stored_chunks, access_ended, visitor_required

PAGE = "web/batch.html"


def _batch(request: HttpRequest, batch_id: str) -> Batch:
    batch = Batch.objects.filter(request.caller.task_scope(), pk=batch_id).first()
    if batch is None:
        raise Http404("No such batch.")
    return batch


@visitor_required
@require_GET
def batch_page(request: HttpRequest, batch_id: str) -> HttpResponse:
    """The grid: a column per value of the last axis, a row per value of the others. Without
    JavaScript the page reloads itself while a cell runs."""
    batch = _batch(request, batch_id)
    return render(request, PAGE, {**batch_grid_context(request, batch), "nav": "play"})


def _cell_etag(request: HttpRequest, batch_id: str, task_id: str, status: str, updated_at, progress) -> str:
    return stamp_etag(request, task_id, status, updated_at, progress, batch_id)


def _unchanged_cell(request: HttpRequest, batch_id: str, task_id: str) -> HttpResponse | None:
    """A poll whose If-None-Match names the cell as it still is: 304 from the one raw statement
    of the status panel's poll (`task_stamp`, which also brings the account the session is checked
    against), nothing else loaded; None for the whole cell (an ended task's is never unchanged)."""
    if not request.headers.get("If-None-Match"):
        return None
    stamp = task_stamp(task_id, request.caller.scope_fields())
    if stamp is None or stamp.status in TERMINAL:
        return None
    if not request.caller.confirmed:
        confirm_session(request, request.caller, stamp.owner)
    etag = _cell_etag(request, batch_id, task_id, stamp.status, stamp.updated_at, stamp.progress)
    response = not_modified(request, etag)
    if response is not None:
        patch_vary_headers(response, ("HX-Request",))
    return response


@visitor_required(lean=True)
@require_GET
def batch_cell(request: HttpRequest, batch_id: str, task_id: str) -> HttpResponse:
    """One cell, polled until its task ends: 286 (htmx stops) with the last state, an ETag while
    it runs. An unchanged cell is a 304 in two statements (the session, `_unchanged_cell`), as an
    unchanged status panel is: a grid polls a cell a second for each of its running tasks."""
    try:
        if request.htmx and (unchanged := _unchanged_cell(request, batch_id, task_id)):
            return unchanged
        if not request.caller.confirmed:  # the whole cell: the session checked as any page's
            request.caller = session_caller(request)
    except AccessEnded as exc:
        return access_ended(request, exc.message, sign_in=exc.sign_in, retry=exc.retry)
    task = (
        Task.objects.filter(request.caller.task_scope(), pk=task_id, batch_id=batch_id)
        .select_related("model", "batch")
        .defer("input", "model__input_schema", "model__example_input")
        .first()
    )
    if task is None:
        if request.htmx:
            return access_ended(request, TASK_GONE, status=404)
        raise Http404("No such cell.")
    batch = task.batch
    context = {"cell": grid_cell(request, batch, task, batch.task_ids.index(task.pk))}
    if task.is_terminal:
        response = render(request, f"{PAGE}#grid-cell", context, status=HTMX_STOP_POLLING)
    else:
        etag = _cell_etag(request, batch_id, task.pk, task.status, task.updated_at, task.progress)
        response = conditional_response(request, etag, lambda: render(request, f"{PAGE}#grid-cell", context))
    patch_vary_headers(response, ("HX-Request",))
    return response


@visitor_required
@require_GET
def batch_png(request: HttpRequest, batch_id: str) -> HttpResponse:
    """The grid as one PNG, labelled: what has succeeded so far, the others as their status."""
    batch = _batch(request, batch_id)
    tasks = batch_tasks(request.caller, batch)
    response = HttpResponse(grid_png(batch, tasks, grid_labels(batch)), content_type="image/png")
    response["Content-Disposition"] = f'attachment; filename="{batch.pk}.png"'
    return response


@visitor_required
@require_GET
def batch_zip(request: HttpRequest, batch_id: str) -> HttpResponse:
    """Every output of the batch's succeeded cells in one zip, streamed as a task's zip is
    (`views.task_zip`), each named after its cell."""
    batch = _batch(request, batch_id)
    entries = zip_entries(batch, batch_tasks(request.caller, batch), grid_labels(batch))
    if not entries:
        raise Http404("No cell of this batch has outputs yet.")
    archive = ZipStream(sized=True)
    for name, path in entries:
        archive.add(_stored_chunks(path), name, size=default_storage.size(path))
    response = StreamingHttpResponse(archive, content_type="application/zip")
    response["Content-Length"] = str(len(archive))
    response["Content-Disposition"] = f'attachment; filename="{batch.pk}.zip"'
    return response
