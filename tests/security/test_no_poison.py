"""Issue 13, "No poison": text that is not text (a lone surrogate, NUL, other control characters
but tab and line breaks) is refused at submit with 422 naming the field, in the API and the form,
for every string field and the model slug; and text is capped (schema maxLength, else
PLAYGROUND_MAX_TEXT_CHARS)."""

import base64
import io
import json

import pytest
from django.urls import reverse
from PIL import Image

from playground.catalog.schema_forms import as_form_data
from playground.catalog.validation import validate_input
from playground.generations.models import Task

from ..helpers import SEED, seed_input

PLAY = reverse("play", args=[SEED])
REFUSED = ["\x00", "\x01", "\x08", "\x0b", "\x1b", "\x7f", "\x85", "\x9f", "lone\rreturn"]
ACCEPTED = ["tab\there", "two\nlines", "windows\r\nlines", "月光 🌙 ünïcode", "\u2028 \ufeff"]


def raw_post(api, body: dict, marker: str, replacement: str, **kwargs):
    """POST `body` with `marker` replaced in the JSON text: JSON escapes such as "\\ud800" that
    Python's json.dumps cannot write from a str."""
    return api.post("/api/v1/tasks", raw=json.dumps(body).replace(marker, replacement), **kwargs)


@pytest.fixture
def signed_in(client, user, catalog):
    client.force_login(user)
    return client


def test_the_findings_lone_surrogate_prompt_is_refused_and_nothing_is_queued(api):
    """The finding: `"lone \\ud800 surrogate"` was accepted (201), the task failed engine_crashed
    and the account's pages answered 500 from then on."""
    response = raw_post(
        api, {"model": SEED, "input": seed_input(prompt="LONE")}, "LONE", "lone \\ud800 surrogate"
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_text", "input.prompt")
    assert "surrogate" in error["message"]
    assert not Task.objects.exists()


def test_the_findings_lone_surrogate_model_is_refused_naming_the_model(api):
    response = raw_post(api, {"model": "MODEL", "input": seed_input()}, "MODEL", "\\ud800")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "model"


@pytest.mark.parametrize("bad", REFUSED)
def test_a_control_character_in_the_prompt_is_refused_naming_the_field(api, bad):
    response = api.submit(prompt=f"a prompt {bad} here")
    assert response.status_code == 422, response.json()
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_text", "input.prompt")
    assert not Task.objects.exists()


@pytest.mark.parametrize("good", ACCEPTED)
def test_tabs_line_breaks_and_any_real_character_are_accepted(api, good):
    response = api.submit(prompt=f"a prompt {good}")
    assert response.status_code == 201, response.json()
    assert Task.objects.get().input["prompt"] == f"a prompt {good}"


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (SEED, seed_input(size="1:1\x00"), "input.size"),
        (
            SEED,
            seed_input(image_urls=["https://example.com/a.png", "https://example.com/\x07.png"]),
            "input.image_urls[1]",
        ),
        (
            "wan2-7-r2v",
            {
                "prompt": "p",
                "image_with_roles": [{"url": "https://example.com/a.png", "role": "reference_image\x1b"}],
            },
            "input.image_with_roles[0].role",
        ),
        (SEED, {**seed_input(), "extra\x00key": 1}, "input.extra\x00key"),
        ("gemini\x00", seed_input(), "model"),
    ],
)
def test_every_string_field_however_deep_and_every_key_is_checked_naming_its_path(api, model, data, field):
    response = api.post("/api/v1/tasks", {"model": model, "input": data})
    assert response.status_code == 422, response.json()
    assert response.json()["error"]["field"] == field
    assert response.json()["error"]["code"] == "invalid_text"


def test_the_webhook_url_and_the_idempotency_key_are_text_too(api):
    body = {"model": SEED, "input": seed_input(), "webhook_url": "https://example.com/\x00hook"}
    response = api.post("/api/v1/tasks", body)
    assert (response.status_code, response.json()["error"]["field"]) == (422, "webhook_url")
    response = api.submit(headers={"Idempotency-Key": "key\x01one"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert not Task.objects.exists()


@pytest.mark.parametrize("bad", ["\x00", "\x01", "lone\rreturn"])
def test_the_form_refuses_the_same_text_with_the_same_words_beside_the_field(signed_in, bad):
    response = signed_in.post(PLAY, {**as_form_data_seed(), "prompt": f"a {bad} prompt"})
    assert response.status_code == 422
    form = response.context["form"]
    api_words = "control character" if bad != "lone\rreturn" else "carriage return"
    assert any(api_words in error for error in form.errors["prompt"]), form.errors
    assert not Task.objects.exists()


def test_the_form_accepts_a_textarea_with_browser_line_breaks(signed_in):
    response = signed_in.post(PLAY, {**as_form_data_seed(), "prompt": "first line\r\nsecond\tline"})
    assert response.status_code == 302
    assert Task.objects.get().input["prompt"] == "first line\r\nsecond\tline"


def as_form_data_seed(**overrides):
    from playground.catalog.models import CatalogEntry

    return as_form_data(CatalogEntry.objects.get(slug=SEED), seed_input(**overrides))


# --- The text cap -------------------------------------------------------------------------------------


def test_a_prompt_over_the_default_cap_of_ten_thousand_characters_is_refused(api):
    assert api.submit(prompt="x" * 10_000).status_code == 201
    response = api.submit(prompt="x" * 10_001)
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["field"], error["errors"][0]["code"]) == ("input.prompt", "too_long")
    assert "10000 characters" in error["message"]
    assert Task.objects.count() == 1


def test_the_cap_comes_from_the_setting_and_covers_every_string(api, settings):
    settings.PLAYGROUND_MAX_TEXT_CHARS = 40
    assert api.submit(prompt="p" * 41).json()["error"]["field"] == "input.prompt"
    long_url = "https://example.com/" + "a" * 40 + ".png"
    response = api.submit(image_urls=["https://example.com/a.png", long_url])
    assert response.json()["error"]["field"] == "input.image_urls[1]"
    nested = {"prompt": "p", "image_with_roles": [{"url": long_url, "role": "reference_image"}]}
    response = api.post("/api/v1/tasks", {"model": "wan2-7-r2v", "input": nested})
    assert response.json()["error"]["field"] == "input.image_with_roles[0].url"
    assert not Task.objects.exists()


def test_a_schemas_max_length_is_the_cap_of_its_field(api, catalog, settings):
    settings.PLAYGROUND_MAX_TEXT_CHARS = 40
    entry = catalog[SEED]
    entry.input_schema["properties"]["prompt"]["maxLength"] = 60
    entry.save()
    assert api.submit(prompt="p" * 60).status_code == 201
    response = api.submit(prompt="p" * 61)
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "Must be at most 60 characters."


def test_a_data_uri_is_not_text_and_its_length_is_not_capped(api, catalog, settings):
    settings.PLAYGROUND_MAX_TEXT_CHARS = 40
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "PNG")
    data_uri = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    assert len(data_uri) > 40
    assert api.submit(image_urls=[data_uri]).status_code == 201
    # As the form's own check sees a pasted one (not yet a stored file), and a prompt does not.
    errors = validate_input(catalog[SEED], seed_input(image_urls=[data_uri], mask_url=data_uri))
    assert errors == []
    assert validate_input(catalog[SEED], seed_input(prompt=data_uri))[0].field == "input.prompt"


def test_the_form_caps_the_prompt_with_the_same_rule_and_says_so_instead_of_cutting_it(signed_in, settings):
    settings.PLAYGROUND_MAX_TEXT_CHARS = 40
    # A textarea is not cut short by the browser (a pasted prompt would lose its end silently):
    # it carries the cap for app.js's count, and the server refuses what is over it.
    html = signed_in.get(PLAY).content.decode()
    assert 'data-maxlength="40"' in html and ' maxlength="40"' not in html
    response = signed_in.post(PLAY, {**as_form_data_seed(), "prompt": "p" * 41})
    assert response.status_code == 422
    assert response.context["form"].errors["prompt"]
    assert not Task.objects.exists()
