"""A batch in a real browser: vary the seed model's aspect ratio over three values, see a 1x3 grid
fill in without a reload, every poll stop once the last cell has ended, and download the grid as
one labelled PNG."""

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from playground.generations.models import Batch
from playground.web.batch_grid import grid_size

from .conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SEED_PATH = "/play/gemini-3-pro-image-preview-official"
CELL_POLL = re.compile(r"/batches/batch_\w+/cells/task_\w+$")
CELL_WIDTHS = "[...document.querySelectorAll('.grid-cell')].map(c => c.getBoundingClientRect().width)"


def test_a_three_value_vary_fills_a_grid_without_reload_stops_polling_and_downloads_as_a_png(page):
    page.goto(SEED_PATH)
    page.fill("textarea[name=prompt]", "A lighthouse at dusk")
    page.click("#field-size details.vary > summary")
    for size in ("1:1", "16:9", "9:16"):
        page.check(f"#field-size input[name=vary__size][value='{size}']")
    page.wait_for_selector("#cost [data-runs='3']")
    assert "3 runs · est. $0.3618" in page.inner_text("#cost")

    polls = []
    page.on("request", lambda request: polls.append(request.url) if CELL_POLL.search(request.url) else None)
    page.evaluate("window.sameDocument = 'yes'")
    page.click("button.generate")
    page.wait_for_selector("#task-status.grid-panel")
    batch = Batch.objects.get()
    page.wait_for_url(f"**/batches/{batch.pk}")
    assert page.locator("#task-status .grid-cell").count() == 3
    assert page.locator("#task-status thead th.axis-value").all_inner_texts() == [
        "1:1",
        "9:16",
        "16:9",
    ]  # the schema's order

    wait_until(page, "document.querySelectorAll('.grid-cell[data-status=succeeded] img').length === 3", 30)
    assert page.evaluate("window.sameDocument") == "yes", "the page was reloaded"
    assert polls, "no cell polled"
    assert page.locator(".grid-cell[hx-get]").count() == 0
    ended = len(polls)
    page.wait_for_timeout(2500)
    assert len(polls) == ended, "a cell went on polling after every cell had ended"

    with page.expect_download() as download:
        page.click("[data-grid-png]")
    image = Image.open(io.BytesIO(Path(download.value.path()).read_bytes()))
    assert image.format == "PNG" and image.size == grid_size(1, 3)

    page.click("tbody td:nth-of-type(3) .grid-cell-link")  # the 16:9 cell opens as its task
    page.wait_for_url(f"**/tasks/{batch.task_ids[2]}")
    assert page.locator("#task-status .badge[data-status=succeeded]").count() == 1


def test_a_grid_cells_are_as_wide_as_each_other_whatever_their_outputs_size(page):
    """A 2K output beside a 1K one (or a finished cell beside a queued one) does not widen its
    column: the image is fitted into its cell, not the cell stretched to the image."""
    page.goto(SEED_PATH)
    page.fill("textarea[name=prompt]", "A lighthouse at dusk")
    page.click("#field-resolution details.vary > summary")
    for resolution in ("1K", "2K"):
        page.check(f"#field-resolution input[name=vary__resolution][value='{resolution}']")
    page.wait_for_selector("#cost [data-runs='2']")
    page.click("button.generate")
    page.wait_for_selector("#task-status.grid-panel")
    wait_until(page, "document.querySelectorAll('.grid-cell[data-status=succeeded] img').length === 2", 30)
    for url in (page.url, page.url):  # the playground's panel, then the grid's own page
        widths = page.evaluate(CELL_WIDTHS)
        assert len(widths) == 2 and abs(widths[0] - widths[1]) < 2, widths
        page.goto(url)
