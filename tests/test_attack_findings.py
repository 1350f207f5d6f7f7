"""Failing tests from an attack review of the guest scopes, form tokens, estimate, model switch
and visit strip (see the review report). Each names what should hold."""

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from playground.catalog.schema_forms import as_form_data
from playground.generations.models import Task
from playground.keys.passes import create_pass, pass_token

from .helpers import SEED, seed_input

PLAY = reverse("play", args=[SEED])
HTMX = {"HX-Request": "true"}


@pytest.fixture
def link(user, catalog):
    demo = create_pass(user, "Team demo", [SEED, "kling-v3"], spend_cap=5, hours=2)
    return reverse("demo", args=[pass_token(demo)])


def new_guest(link):
    browser = Client()
    assert browser.get(link).status_code == 302
    return browser


def press(browser, catalog, token, capture, **overrides):
    data = {**as_form_data(catalog[SEED], seed_input(**overrides)), "form_token": token}
    with capture(execute=True):
        return browser.post(PLAY, data, headers=HTMX)


def test_a_guest_pressing_with_a_token_another_guest_spent_gets_a_task_of_their_own(
    link, catalog, django_capture_on_commit_callbacks
):
    """Form tokens are idempotency keys per *owner*, and every guest on a pass shares the owner:
    guest B sending guest A's token with the same input is answered with A's task (a 404 for
    htmx, a redirect naming A's task id without htmx) and B's press makes nothing."""
    first, second = new_guest(link), new_guest(link)
    press(first, catalog, "shared-token-1", django_capture_on_commit_callbacks, prompt="same")
    response = press(second, catalog, "shared-token-1", django_capture_on_commit_callbacks, prompt="same")
    assert response.status_code == 200
    assert Task.objects.count() == 2
    mine = Task.objects.exclude(pk=Task.objects.order_by("created_at").first().pk).get()
    assert response["HX-Push-Url"] == reverse("task", args=[mine.pk])

    # Without htmx: never a redirect to the other guest's task.
    data = {**as_form_data(catalog[SEED], seed_input(prompt="same")), "form_token": "shared-token-1"}
    with django_capture_on_commit_callbacks(execute=True):
        plain = Client()
        plain.get(link)
        answer = plain.post(PLAY, data)
    assert answer["Location"] not in {reverse("task", args=[t.pk]) for t in Task.objects.all()[:2]}


def test_a_changed_press_with_a_spent_token_resent_is_still_one_task(
    client, user, catalog, django_capture_on_commit_callbacks
):
    """A spent token with a changed input is a new task (by design), but the retry key is random,
    so the same changed press sent twice (double click, resent POST, back button) makes two."""
    client.force_login(user)
    capture = django_capture_on_commit_callbacks
    press(client, catalog, "token-spent-1", capture, prompt="before")
    first = press(client, catalog, "token-spent-1", capture, prompt="after")
    again = press(client, catalog, "token-spent-1", capture, prompt="after")
    assert sorted(t.input["prompt"] for t in Task.objects.all()) == ["after", "before"]
    assert first["HX-Push-Url"] == again["HX-Push-Url"]


def test_the_estimate_never_prices_a_value_the_model_refuses(client, user, catalog):
    """`pricing_input` says a value that does not clean is left out, but `_keep_unoffered_choices`
    adds any submitted value to a select's choices, so it cleans: kling-v3 duration -10 shows a
    negative price on the button."""
    client.force_login(user)
    html = client.get(reverse("estimate", args=["kling-v3"]), {"duration": "-10"}, headers=HTMX)
    assert "-0." not in html.content.decode()
    html = client.get(reverse("estimate", args=["kling-v3"]), {"duration": "10000"}, headers=HTMX)
    assert "$151.2" not in html.content.decode()


def test_a_model_switch_does_not_echo_more_uploads_than_the_field_takes(client, user, catalog, settings):
    """The picker's POST turns every uploaded file into a data URI and renders them all back into
    the page: N files x PLAYGROUND_MAX_INPUT_IMAGE_BYTES of memory and response, with N up to
    DATA_UPLOAD_MAX_NUMBER_FILES (100), i.e. ~2.7 GB of base64 for one request by any guest. The
    field takes 14 (maxItems); the request body limit is DATA_UPLOAD_MAX_MEMORY_SIZE."""
    settings.PLAYGROUND_MAX_INPUT_IMAGE_BYTES = 20_000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    client.force_login(user)
    files = [SimpleUploadedFile(f"{i}.png", b"\x89PNG" + b"x" * 19_000, "image/png") for i in range(30)]
    response = client.post(
        reverse("pick-model"),
        {"model": SEED, "switch_from": SEED, "prompt": "x", "image_urls__file": files},
        headers=HTMX,
    )
    assert response.status_code in (200, 400, 413)
    assert len(response.content) < 2 * settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def test_a_prompt_with_a_lone_surrogate_breaks_no_page(api, client, user):
    """JSON allows "\\ud800"; the API stores it. Then the strip thumb, the task page, its re-run and
    the history answer 500 (SQLite cannot decode the prompt column / the page cannot be encoded).
    Either the API refuses such a string (422) or every page shows the task."""
    body = json.dumps({"model": SEED, "input": {"prompt": "LONE", "n": 1}})
    body = body.replace("LONE", "lone \\ud800 half")  # JSON text with a lone surrogate escape
    response = api.post("/api/v1/tasks", raw=body)
    if response.status_code == 422:
        return
    assert response.status_code == 201
    task_id = response.json()["task_id"]
    client.force_login(user)
    for url in (
        reverse("task", args=[task_id]),
        reverse("task-thumb", args=[task_id]),
        PLAY + f"?from={task_id}",
        reverse("history"),
    ):
        assert client.get(url).status_code in (200, 286), url


def test_access_ended_on_the_model_picker_survives_its_hx_select(client, user, catalog):
    """The picker swaps with hx-select=".play". When the session has ended, the answer is the
    access-ended panel retargeted to #task-status, which has no `.play`: htmx selects nothing and the
    result panel disappears without a word (seen in chromium). It needs HX-Reselect (or a body
    that survives the select)."""
    page = Client()
    response = page.post(reverse("pick-model"), {"model": SEED, "switch_from": SEED}, headers=HTMX)
    assert response["HX-Retarget"] == "#task-status"
    body = response.content.decode()
    assert response.get("HX-Reselect") or re.search(r'class="[^"]*\bplay\b', body), (
        "hx-select='.play' filters this answer to nothing"
    )
