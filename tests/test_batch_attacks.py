"""Attacks on POST /api/v1/batches and GET /api/v1/batches/{id}: each test here is a finding of the
batches review (or a check that held), reproduced through the API."""

import time

import pytest

from playground.generations.models import Batch, InputFile, Task

from .helpers import SEED, data_uri, seed_input, solid_png

BATCHES = "/api/v1/batches"


def shared(**overrides):
    data = {key: value for key, value in seed_input().items() if key != "size"}
    return {**data, **overrides}


# --- Cheap refusals stay cheap -------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["vary", "models"])
def test_a_huge_list_of_values_or_models_is_refused_in_linear_time(api, queue_only, where):
    """The duplicate check compared each value with a copy of every value before it (quadratic), and
    ran before the cap: 20,000 values (a 120 KB body) held a worker ~4 s, 200,000 (1.3 MB, well
    inside the 32 MB body limit) ~7 minutes. Now the cap is checked first."""
    many = [f"v{i}" for i in range(60_000)]
    body = (
        {"model": SEED, "input": shared(), "vary": {"size": many}}
        if where == "vary"
        else {"models": many, "input": shared()}
    )
    started = time.monotonic()
    answer = api.post(BATCHES, body)
    elapsed = time.monotonic() - started
    assert answer.status_code == 422, answer.content[:300]
    assert answer.json()["error"]["code"] == "batch_too_large"
    assert "60000 tasks" in answer.json()["error"]["message"]
    assert elapsed < 3, elapsed
    assert not Task.objects.exists()


# --- Money -----------------------------------------------------------------------------------------------


def test_a_batch_whose_total_is_past_what_the_ledger_holds_is_422_not_500(api, queue_only, catalog):
    """Each cell's estimate is held to MAX_PRICE (12 digits, 4 places), but their sum was not: two
    cells of 60 million dollars each (an entry whose count has no maximum) overflowed
    Batch.cost_estimate and answered 500."""
    entry = catalog[SEED]
    del entry.input_schema["properties"]["n"]["maximum"]
    entry.save()
    body = {"model": SEED, "input": shared(), "vary": {"n": [500_000_000, 600_000_000]}}
    answer = api.post(BATCHES, body)
    assert answer.status_code == 422, answer.content[:300]
    assert answer.json()["error"]["errors"][0]["code"] == "no_price"
    assert not Task.objects.exists() and not Batch.objects.exists()


# --- Inputs ------------------------------------------------------------------------------------------------


def test_a_varied_data_uri_is_kept_as_its_input_file_not_its_bytes_in_the_batch(api, queue_only):
    """A varied media field (image_urls) holding data URIs: each task references its stored input
    file, but the batch's axes kept every data URI's bytes (megabytes in the batch row, answered in
    full by every POST replay and GET of the batch, and out of reach of the input files' rules)."""
    images = [data_uri(solid_png(color, size=(64, 64))) for color in ((255, 0, 0), (0, 0, 255))]
    body = {"model": SEED, "input": shared(size="1:1"), "vary": {"image_urls": [[images[0]], [images[1]]]}}
    answer = api.post(BATCHES, body)
    assert answer.status_code == 201, answer.content[:300]
    assert InputFile.objects.count() == 2
    assert b"data:image" not in answer.content
    detail = api.get(f"{BATCHES}/{answer.json()['batch_id']}")
    assert b"data:image" not in detail.content
    tasks = Task.objects.in_bulk(answer.json()["task_ids"])
    for cell in detail.json()["cells"]:
        assert cell["values"]["image_urls"] == tasks[cell["task"]["task_id"]].input["image_urls"]
