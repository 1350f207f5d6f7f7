"""A batch shown as a grid: its axes labelled for people, its cells in rows and columns, and the same
grid as one labelled PNG (composited with Pillow) or the files of a zip.

A column per value of the batch's last varied axis (`Batch.column_axis`), a row per combination of
the other axes' values (the order of `Batch.task_ids`, row by row); a row's label joins its values
("GPT Image 2 · 4").
"""

import io
import re
from dataclasses import dataclass
from itertools import product

from django.core.files.storage import default_storage
from django.http import HttpRequest
from PIL import Image, ImageDraw, ImageFont

from playground.catalog.fields import fields_of
from playground.catalog.models import CatalogEntry
from playground.generations.models import Batch, InputText, Status, Task
from playground.generations.outputs import output_url
from playground.generations.presenters import percent, shown_progress

# The PNG: each cell's first image scaled to fit CELL x CELL, a band of column labels above and of
# row labels on the left. At most PLAYGROUND_MAX_BATCH_TASKS cells, so at most a few MB in memory.
CELL = 256
LABEL_BAND = 28
ROW_LABEL_WIDTH = 200
INK = (20, 20, 20)
PAPER = (255, 255, 255)
EMPTY_CELL = (232, 232, 232)
MAX_SOURCE_PIXELS = 40_000_000  # an output larger than this is not decoded for a thumbnail


@dataclass(frozen=True)
class GridLabels:
    column_title: str  # the last axis's name ("Aspect ratio")
    row_title: str  # the other axes' names ("Model · Images")
    columns: list[str]
    rows: list[str]


def _value_label(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def grid_labels(batch: Batch) -> GridLabels:
    """The grid's axes in people's words: model titles for slugs, field titles for names."""
    slugs = next((axis["values"] for axis in batch.axes if axis["field"] == "model"), [])
    entries = {entry.slug: entry for entry in CatalogEntry.objects.filter(slug__in=slugs)}
    names: dict[str, str] = {"model": "Model"}
    for entry in entries.values():
        for spec in fields_of(entry):
            names.setdefault(spec.name, spec.label)

    def shown(axis) -> list[str]:
        if axis["field"] == "model":
            return [entries[slug].title if slug in entries else slug for slug in axis["values"]]
        return [_value_label(value) for value in axis["values"]]

    column_axis = batch.axes[batch.column_axis]
    row_axes = [axis for index, axis in enumerate(batch.axes) if index != batch.column_axis]
    rows = [" · ".join(values) for values in product(*map(shown, row_axes))] or [""]
    return GridLabels(
        column_title=names.get(column_axis["field"], column_axis["field"]),
        row_title=" · ".join(names.get(axis["field"], axis["field"]) for axis in row_axes),
        columns=shown(column_axis),
        rows=rows,
    )


def batch_tasks(caller, batch: Batch) -> list[Task | None]:
    """The batch's tasks in cell order, as far as the caller sees them (None for one out of sight)."""
    tasks = Task.objects.filter(caller.task_scope(), batch_id=batch.pk).select_related("model")
    tasks = tasks.defer("input", "model__input_schema", "model__example_input").annotate(
        prompt=InputText("prompt")
    )
    found = {task.pk: task for task in tasks}
    return [found.get(task_id) for task_id in batch.task_ids]


def first_output(request: HttpRequest | None, task: Task) -> dict | None:
    if task.status != Status.SUCCEEDED or not task.output:
        return None
    items = task.output.get(task.model.output_key, [])
    if not items:
        return None
    return {**items[0], "url": output_url(request, task.pk, items[0]["file"]) if request else ""}


def grid_cell(request: HttpRequest, batch: Batch, task: Task, index: int) -> dict:
    """One cell: its task, where it is in the grid, its first output, and while it runs how far
    it is (whole percents, as the status panel says; None when its engine cannot tell)."""
    progress = percent(shown_progress(task.status, task.progress)) if not task.is_terminal else None
    return {
        "batch": batch,
        "task": task,
        "index": index,
        "thumb": first_output(request, task),
        "percent": progress,
    }


def batch_grid_context(request: HttpRequest, batch: Batch) -> dict:
    """What the grid page and its partials show: the labels, rows of cells, and whether any cell
    still runs (the page without JavaScript refreshes itself until none does)."""
    labels = grid_labels(batch)
    tasks = batch_tasks(request.caller, batch)
    _, columns = batch.shape
    cells = [grid_cell(request, batch, task, index) for index, task in enumerate(tasks) if task is not None]
    rows = [
        {"label": label, "cells": [c for c in cells if c["index"] // columns == number]}
        for number, label in enumerate(labels.rows)
    ]
    present = [task for task in tasks if task is not None]
    return {
        "batch": batch,
        "labels": labels,
        "grid_rows": rows,
        "running": any(not task.is_terminal for task in present),
        "done": sum(task.is_terminal for task in present),
        "total": len(present),
        "succeeded": sum(task.status == Status.SUCCEEDED for task in present),
    }


# --- The grid as one PNG --------------------------------------------------------------------------------


def grid_size(rows: int, columns: int) -> tuple[int, int]:
    """The PNG's size in pixels: the cells plus the two label bands."""
    return ROW_LABEL_WIDTH + columns * CELL, LABEL_BAND + rows * CELL


def _font(size: int = 14):
    return ImageFont.load_default(size=size)  # Pillow's own font (its wheels ship FreeType)


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, font) -> str:
    """`text` cut with an ellipsis to fit `width` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _thumbnail(task: Task) -> Image.Image | None:
    output = first_output(None, task)
    if output is None or task.model.kind != "image":
        return None
    try:
        with default_storage.open(output["file"], "rb") as handle, Image.open(handle) as image:
            if image.width * image.height > MAX_SOURCE_PIXELS:
                return None
            image.draft("RGB", (CELL, CELL))
            image = image.convert("RGB")
            image.thumbnail((CELL, CELL))
            return image
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def grid_png(batch: Batch, tasks: list[Task | None], labels: GridLabels) -> bytes:
    """The grid as one PNG: each cell's first image fitted into its square (else a grey square
    saying the cell's status), column labels in a band above, row labels in a band on the left."""
    rows, columns = batch.shape
    canvas = Image.new("RGB", grid_size(rows, columns), PAPER)
    draw = ImageDraw.Draw(canvas)
    font = _font()
    corner = f"{labels.row_title} \\ {labels.column_title}" if labels.row_title else labels.column_title
    draw.text(
        (6, LABEL_BAND // 2), _fit(draw, corner, ROW_LABEL_WIDTH - 12, font), fill=INK, font=font, anchor="lm"
    )
    for column, label in enumerate(labels.columns):
        x = ROW_LABEL_WIDTH + column * CELL + CELL // 2
        draw.text((x, LABEL_BAND // 2), _fit(draw, label, CELL - 12, font), fill=INK, font=font, anchor="mm")
    for row, label in enumerate(labels.rows):
        y = LABEL_BAND + row * CELL + CELL // 2
        draw.text((6, y), _fit(draw, label, ROW_LABEL_WIDTH - 12, font), fill=INK, font=font, anchor="lm")
    for index, task in enumerate(tasks):
        left, top = ROW_LABEL_WIDTH + (index % columns) * CELL, LABEL_BAND + (index // columns) * CELL
        image = _thumbnail(task) if task is not None else None
        draw.rectangle((left + 1, top + 1, left + CELL - 2, top + CELL - 2), fill=EMPTY_CELL)
        if image is not None:
            canvas.paste(image, (left + (CELL - image.width) // 2, top + (CELL - image.height) // 2))
        else:
            status = task.get_status_display() if task is not None else "Not available"
            if task is not None and task.status == Status.SUCCEEDED:
                status = "Video" if task.model.kind == "video" else "No image"
            draw.text((left + CELL // 2, top + CELL // 2), status, fill=INK, font=font, anchor="mm")
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG", optimize=False)
    return buffer.getvalue()


# --- The grid as a zip -------------------------------------------------------------------------------


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "cell"


def zip_entries(batch: Batch, tasks: list[Task | None], labels: GridLabels) -> list[tuple[str, str]]:
    """(name in the zip, stored path) of every output of the batch's succeeded cells, each named
    after its cell: `01-Gemini-3-Pro-Image_16-9-0.png`."""
    _, columns = batch.shape
    entries = []
    for index, task in enumerate(tasks):
        if task is None or task.status != Status.SUCCEEDED or not task.output:
            continue
        row, column = divmod(index, columns)
        cell = _safe("_".join(filter(None, (labels.rows[row], labels.columns[column]))))
        for item in task.output.get(task.model.output_key, []):
            entries.append((f"{index + 1:02d}-{cell}-{item['file'].rsplit('/', 1)[-1]}", item["file"]))
    return entries
