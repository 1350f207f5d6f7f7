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

from playground.generations.models import Batch, Task
from playground.generations.presenters import conditional_response, stamp_etag

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


@visitor_required
@require_GET
def batch_cell(request: HttpRequest, batch_id: str, task_id: str) -> HttpResponse:
    """One cell, polled until its task ends: 286 (htmx stops) with the last state, an ETag while
    it runs (an unchanged cell is a 304)."""
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
        etag = stamp_etag(request, task.pk, task.status, task.updated_at, task.progress)
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
