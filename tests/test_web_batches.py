"""Batches in the browser: the form's Vary and Also run on controls, the batch's estimate on the
Generate button, the submit (htmx and a plain post), the grid page and its polling cells, the grid
as one labelled PNG and as a zip, History's link to the grid, and 404 for anyone else."""

import io
import re
import zipfile

import pytest
from django.urls import reverse
from PIL import Image

from playground.catalog.models import CatalogEntry
from playground.catalog.schema_forms import as_form_data
from playground.generations.batches import submit_batch
from playground.generations.models import Batch, Status, Task
from playground.web.batch_grid import CELL, LABEL_BAND, ROW_LABEL_WIDTH, grid_size

from .helpers import SEED, seed_input

PLAY = reverse("play", args=[SEED])
SIZES = ["1:1", "16:9", "9:16"]


@pytest.fixture
def signed_in(client, user, catalog):
    client.force_login(user)
    return client


def form(**vary):
    data = as_form_data(CatalogEntry.objects.get(slug=SEED), seed_input(prompt="a fox"))
    return {
        **data,
        "form_token": "grid-token-1",
        **{f"vary__{name}": values for name, values in vary.items()},
    }


@pytest.fixture
def run_batch(signed_in, django_capture_on_commit_callbacks):
    """Submit the form with `vary` values; its tasks run as it commits (the immediate backend)."""

    def submit(**vary) -> Batch:
        with django_capture_on_commit_callbacks(execute=True):
            return made(signed_in.post(PLAY, form(**vary)))

    return submit


def made(response) -> Batch:
    assert response.status_code == 302, response.content.decode()[:2000]
    batch = Batch.objects.get()
    assert response["Location"] == reverse("batch", args=[batch.pk])
    return batch


# --- The form ------------------------------------------------------------------------------------


def test_it_offers_vary_beside_choices_numbers_and_switches_and_other_models(signed_in):
    html = signed_in.get(PLAY).content.decode()
    for size in SIZES:
        assert f'name="vary__size" value="{size}"' in html
    assert 'name="vary__resolution" value="4K"' in html
    assert re.search(r'<input type="text" class="priced" name="vary__n"', html)
    assert "up to 2 fields vary at once, 16 runs in all" in html
    assert 'name="also_run_on" value="gpt-image-2"' in html
    assert f'name="also_run_on" value="{SEED}"' not in html  # not beside itself
    assert "vary__" not in signed_in.get(reverse("present-model", args=[SEED])).content.decode()


def test_the_generate_button_shows_the_batch_total(signed_in):
    url = reverse("estimate", args=[SEED])
    one = signed_in.get(url, {"resolution": "1K", "n": "1"}).content.decode()
    assert "est. $0.1206" in one and "runs" not in one
    three = signed_in.get(url, {"resolution": "1K", "n": "1", "vary__size": SIZES}).content.decode()
    assert re.search(r"3 runs</span> · est\. \$0\.3618", three), three
    by_resolution = signed_in.get(url, {"n": "1", "vary__resolution": ["1K", "4K"]}).content.decode()
    assert "2 runs" in by_resolution and "est. $0.3366" in by_resolution  # 0.1206 + 0.216
    on_two = {"resolution": "1K", "n": "1", "vary__size": SIZES, "also_run_on": "gpt-image-2"}
    assert "6 runs" in signed_in.get(url, on_two).content.decode()
    too_many = signed_in.get(url, {"n": "1", "vary__size": SIZES, "vary__n": "1, 2, 3, 4, 1.5, 6"})
    assert "(at most 16 runs)" in too_many.content.decode() or "est. —" in too_many.content.decode()
    over = signed_in.get(
        url, {"vary__size": SIZES, "vary__resolution": ["1K", "2K", "4K"], "also_run_on": "gpt-image-2"}
    )
    assert "18 runs" in over.content.decode() and "(at most 16 runs)" in over.content.decode()


# --- Submitting ----------------------------------------------------------------------------------


def test_a_plain_post_with_vary_values_makes_a_batch_and_leads_to_its_grid(signed_in, run_batch):
    batch = run_batch(size=SIZES)
    tasks = [Task.objects.get(pk=task_id) for task_id in batch.task_ids]
    assert [task.input for task in tasks] == [seed_input(prompt="a fox", size=size) for size in SIZES]
    assert {task.source for task in tasks} == {"web"}
    page = signed_in.get(reverse("batch", args=[batch.pk])).content.decode()
    assert "Aspect ratio →" in page and "Gemini 3 Pro Image" in page
    assert all(f'<th scope="col" class="axis-value">{size}</th>' in page for size in SIZES)
    for task in tasks:
        assert f'href="/tasks/{task.pk}"' in page  # each cell opens as its task
    assert page.count('class="grid-cell status-succeeded"') == 3
    assert "hx-get" not in page.split('<section id="task-status"')[1]  # all ended: nothing polls
    assert 'http-equiv="refresh"' not in page
    # Back to the form from the grid's own page (a cell opened, then Back, lands here).
    assert f'href="/play/{SEED}?from={tasks[0].pk}"' in page


def test_the_grid_page_refreshes_itself_while_a_cell_runs(signed_in, queue_only):
    batch = made(signed_in.post(PLAY, form(size=SIZES)))
    page = signed_in.get(reverse("batch", args=[batch.pk])).content.decode()
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page
    for task_id in batch.task_ids:
        assert f'hx-get="/batches/{batch.pk}/cells/{task_id}"' in page


def test_a_cell_polls_until_its_task_ends_then_stops(signed_in, queue_only, django_assert_num_queries):
    batch = made(signed_in.post(PLAY, form(size=SIZES)))
    url = reverse("batch-cell", args=[batch.pk, batch.task_ids[1]])
    running = signed_in.get(url, headers={"HX-Request": "true"})
    assert running.status_code == 200 and f'hx-get="{url}"' in running.content.decode()
    with django_assert_num_queries(2):  # the session, the task's stamp: as an unchanged status panel
        unchanged = signed_in.get(url, headers={"HX-Request": "true", "If-None-Match": running["ETag"]})
    assert unchanged.status_code == 304
    # Running and half done: the cell shows how far, as the status panel does.
    Task.objects.filter(pk=batch.task_ids[1]).update(status=Status.PROCESSING, progress=0.5)
    moved = signed_in.get(url, headers={"HX-Request": "true", "If-None-Match": running["ETag"]})
    assert moved.status_code == 200
    assert '<progress class="cell-progress" max="100" value="50"' in moved.content.decode()
    Task.objects.filter(pk=batch.task_ids[1]).update(status=Status.CANCELLED, cost_actual=0)
    ended = signed_in.get(url, headers={"HX-Request": "true"})
    assert ended.status_code == 286
    assert "hx-get" not in ended.content.decode() and 'data-status="cancelled"' in ended.content.decode()


def test_an_htmx_submit_puts_the_grid_in_the_result_panel(signed_in, queue_only):
    response = signed_in.post(PLAY, form(size=SIZES), headers={"HX-Request": "true"})
    batch = Batch.objects.get()
    html = response.content.decode()
    assert response.status_code == 200
    assert response["HX-Push-Url"] == reverse("batch", args=[batch.pk])
    assert html.lstrip().startswith('<section id="task-status" class="panel grid-panel"')
    assert html.count('class="grid-cell ') == 3
    assert 'id="form-token" hx-swap-oob="true"' in html
    assert re.search(r"3 runs</span> · est\. \$0\.3618", html)


def test_a_double_submit_makes_one_batch_and_a_changed_form_another(signed_in, queue_only):
    signed_in.post(PLAY, form(size=SIZES))
    signed_in.post(PLAY, form(size=SIZES))
    assert Batch.objects.count() == 1 and Task.objects.count() == 3
    signed_in.post(PLAY, form(size=SIZES[:2]))  # the same token, another input: a new press
    assert Batch.objects.count() == 2 and Task.objects.count() == 5


def test_two_fields_and_another_model_make_their_grid(signed_in, user, queue_only):
    body = {
        "models": [SEED, "gpt-image-2"],
        "input": {"prompt": "a fox"},
        "vary": {"size": SIZES[:2], "n": [1]},
    }
    batch = submit_batch(user, body, request_id="req_test").batch
    assert batch.shape == (2, 2)
    page = signed_in.get(reverse("batch", args=[batch.pk])).content.decode()
    # n has one value: the columns are the sizes, each row a model (with its one n)
    assert "Model · Images ↓" in page and "Aspect ratio →" in page
    assert '<th scope="row" class="axis-value">GPT Image 2 · 1</th>' in page
    assert '<th scope="col" class="axis-value">16:9</th>' in page


def test_also_run_on_gives_another_model_the_form_in_its_own_terms(signed_in):
    """The form is the seed's, at its defaults ("1K", which gpt-image-2 spells "1k"): the other
    model starts from its own defaults and takes the varied values, so the grid runs."""
    response = signed_in.post(PLAY, {**form(size=SIZES[:2]), "also_run_on": "gpt-image-2"})
    assert response.status_code == 302, response.content.decode()[:500]
    gpt = Task.objects.filter(model__slug="gpt-image-2")
    assert sorted(task.input["size"] for task in gpt) == sorted(SIZES[:2])
    assert all("1K" not in task.input.values() for task in gpt)
    assert Task.objects.count() == 4


@pytest.mark.parametrize(
    ("vary", "field", "words"),
    [
        ({"size": ["1:1", "7:3"]}, "size", "Vary Aspect ratio “7:3”"),
        ({"n": "1, two"}, "n", "Vary Images: “two” is not a whole number"),
        ({"n": "1, 9"}, "n", "Vary Images “9”"),
    ],
)
def test_a_bad_value_to_vary_is_refused_beside_its_field(signed_in, vary, field, words):
    response = signed_in.post(PLAY, form(**vary))
    assert response.status_code == 422
    html = response.content.decode()
    errors = html.split(f'id="field-{field}-errors"')[1].split("</div>")[0]
    assert words in errors, errors
    assert not Batch.objects.exists() and not Task.objects.exists()
    assert 'value="7:3"' not in html or "checked" in html  # the form comes back as sent


def test_more_fields_or_runs_than_allowed_are_refused_before_anything_runs(signed_in, settings):
    response = signed_in.post(PLAY, form(size=SIZES, resolution=["1K", "2K"], n="1, 2"))
    assert response.status_code == 422
    assert "At most 2 fields may vary at once; you chose 3" in response.content.decode()
    settings.PLAYGROUND_MAX_BATCH_TASKS = 2
    response = signed_in.post(PLAY, form(size=SIZES))
    assert (
        response.status_code == 422
        and "This batch would make 3 tasks; at most 2" in response.content.decode()
    )
    assert not Task.objects.exists()


def test_a_model_not_offered_is_refused(signed_in):
    response = signed_in.post(PLAY, {**form(size=SIZES[:1]), "also_run_on": "no-such-model"})
    assert response.status_code == 422 and "is not a model you can also run" in response.content.decode()
    assert not Task.objects.exists()


# --- Downloads -----------------------------------------------------------------------------------


def test_the_grid_png_is_the_cells_plus_their_labels(signed_in, run_batch):
    batch = run_batch(size=SIZES)
    response = signed_in.get(reverse("batch-png", args=[batch.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(response.content)).convert("RGB")
    assert image.size == grid_size(1, 3) == (ROW_LABEL_WIDTH + 3 * CELL, LABEL_BAND + CELL)

    def inked(box) -> int:  # dark pixels: text
        return sum(1 for pixel in image.crop(box).get_flattened_data() if sum(pixel) < 200)

    for column in range(3):  # a label above each column, apart from the cells
        left = ROW_LABEL_WIDTH + column * CELL
        assert inked((left, 0, left + CELL, LABEL_BAND)) > 10
    assert inked((0, LABEL_BAND, ROW_LABEL_WIDTH, LABEL_BAND + CELL)) > 10  # the row's label
    assert inked((0, 0, ROW_LABEL_WIDTH, LABEL_BAND)) > 10  # the axis's name
    for column in range(3):  # each cell is its image: many colours, not a label's ink on paper
        left = ROW_LABEL_WIDTH + column * CELL
        cell = image.crop((left, LABEL_BAND, left + CELL, LABEL_BAND + CELL))
        assert len(set(cell.get_flattened_data())) > 50
    # 1:1 fills its square; 16:9 is letterboxed (the grey of an empty cell above and below it)
    wide = image.crop((ROW_LABEL_WIDTH + CELL, LABEL_BAND, ROW_LABEL_WIDTH + 2 * CELL, LABEL_BAND + 20))
    assert set(wide.get_flattened_data()) <= {(232, 232, 232), (255, 255, 255)}


def test_the_grid_png_shows_a_running_cell_as_its_status(signed_in, queue_only):
    batch = made(signed_in.post(PLAY, form(size=SIZES[:2])))
    image = Image.open(io.BytesIO(signed_in.get(reverse("batch-png", args=[batch.pk])).content))
    assert image.size == grid_size(1, 2)


def test_the_zip_holds_each_cells_outputs_named_after_the_cell(signed_in, run_batch):
    batch = run_batch(size=SIZES)
    response = signed_in.get(reverse("batch-zip", args=[batch.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    names = archive.namelist()
    assert names == [
        "01-Gemini-3-Pro-Image_1-1-0.png",
        "02-Gemini-3-Pro-Image_16-9-0.png",
        "03-Gemini-3-Pro-Image_9-16-0.png",
    ], names
    assert (
        Image.open(io.BytesIO(archive.read(names[1]))).size[0]
        > Image.open(io.BytesIO(archive.read(names[1]))).size[1]
    )


def test_history_links_a_batch_task_to_its_grid(signed_in, run_batch):
    batch = run_batch(size=SIZES)
    html = signed_in.get(reverse("history")).content.decode()
    assert html.count(f'href="/batches/{batch.pk}">part of a 1x3 grid</a>') == 3


# --- Anyone else ---------------------------------------------------------------------------------


def test_another_person_gets_404_for_the_grid_its_cells_and_downloads(client, user, other_user, catalog):
    client.force_login(user)
    batch = made(client.post(PLAY, form(size=SIZES)))
    client.force_login(other_user)
    for url in (
        reverse("batch", args=[batch.pk]),
        reverse("batch-png", args=[batch.pk]),
        reverse("batch-zip", args=[batch.pk]),
        reverse("batch-cell", args=[batch.pk, batch.task_ids[0]]),
    ):
        assert client.get(url).status_code == 404, url
    polled = client.get(
        reverse("batch-cell", args=[batch.pk, batch.task_ids[0]]), headers={"HX-Request": "true"}
    )
    assert polled.status_code == 286 and "no longer available" in polled.content.decode()  # stops
    client.logout()
    assert client.get(reverse("batch", args=[batch.pk])).status_code == 302  # to sign in
