import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from playground.catalog.schema_forms import as_form_data
from playground.generations.models import Task

from .helpers import SEED, seed_input

PLAY = reverse("play", args=[SEED])


@pytest.fixture
def signed_in(client, user, catalog):
    client.force_login(user)
    return client


def test_pages_need_a_signed_in_user(client, catalog):
    for url in (PLAY, reverse("history"), reverse("home")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_home_opens_the_seed_model(signed_in):
    assert signed_in.get("/")["Location"] == PLAY


def test_the_model_picker_groups_image_and_video_models(signed_in):
    html = signed_in.get(PLAY).content.decode()
    assert '<optgroup label="Image">' in html and '<optgroup label="Video">' in html
    assert signed_in.get(reverse("pick-model"), {"model": "kling-v3"})["Location"] == reverse(
        "play", args=["kling-v3"]
    )


def test_the_page_says_which_engine_runs_the_model(signed_in):
    assert "Runs on the <strong>local</strong> engine" in signed_in.get(PLAY).content.decode()


def test_an_htmx_submit_answers_with_the_task_panel_and_pushes_its_url(signed_in):
    response = signed_in.post(
        PLAY, {**as_form_data_seed(), "form_token": "tok-12345678"}, headers={"HX-Request": "true"}
    )
    task = Task.objects.get()
    assert response.status_code == 200
    assert response["HX-Push-Url"] == reverse("task", args=[task.pk])
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="task-status"')
    assert task.source == "web"
    assert task.input == seed_input(prompt="a fox")


def test_a_plain_post_without_javascript_redirects_to_the_task_page(signed_in):
    response = signed_in.post(PLAY, as_form_data_seed())
    task = Task.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("task", args=[task.pk])


def test_a_double_submit_of_one_form_makes_one_task(signed_in):
    data = {**as_form_data_seed(), "form_token": "same-form-token"}
    signed_in.post(PLAY, data)
    signed_in.post(PLAY, data)
    assert Task.objects.count() == 1


def test_an_invalid_submit_keeps_the_input_and_shows_the_error_beside_the_field(signed_in):
    data = {**as_form_data_seed(), "mask_url": "https://example.com/m.png", "prompt": "keep me"}
    response = signed_in.post(PLAY, data, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response["HX-Retarget"] == "#run-form"
    assert html.lstrip().startswith('<form id="run-form"')
    assert "A mask needs reference images" in html
    assert "keep me</textarea>" in html
    assert '<details class="advanced" open>' in html
    assert not Task.objects.exists()


def test_without_javascript_an_invalid_submit_renders_the_page_with_422(signed_in):
    response = signed_in.post(PLAY, {**as_form_data_seed(), "n": "9"})
    assert response.status_code == 422
    assert "Ensure this value is less than or equal to 4." in response.content.decode()


def test_an_empty_prompt_is_refused_beside_the_prompt(signed_in):
    response = signed_in.post(PLAY, {**as_form_data_seed(), "prompt": ""})
    html = response.content.decode()
    assert 'id="field-prompt-errors"' in html and "This field is required." in html


def test_the_estimate_follows_n_and_resolution(signed_in):
    url = reverse("estimate", args=[SEED])
    assert "$0.1206" in signed_in.get(url, {"n": "1", "resolution": "1K"}).content.decode()
    assert "$0.3618" in signed_in.get(url, {"n": "3", "resolution": "1K"}).content.decode()
    assert "$0.432" in signed_in.get(url, {"n": "2", "resolution": "4K"}).content.decode()
    # A form that would be refused has no price (not the price of the defaults), and no 500.
    for junk in ({"n": "lots"}, {"n": "999999"}, {"n": "0"}, {"resolution": "8K"}):
        assert "· est. —</span>" in signed_in.get(url, junk).content.decode(), junk


def test_rerun_loads_the_inputs_and_flags_what_the_schema_no_longer_accepts(signed_in, user, catalog):
    task = Task.objects.create(
        owner=user,
        model=catalog[SEED],
        input={**seed_input(prompt="old one", size="4:3", resolution="8K"), "style": "noir"},
        engine="local",
        cost_estimate=0,
        request_id="r",
        request_hash="h",
    )
    html = signed_in.get(PLAY, {"from": task.pk}).content.decode()
    assert "old one</textarea>" in html
    assert '<option value="4:3" selected>' in html
    # A value the schema no longer accepts stays in its field, flagged beside it.
    assert '<option value="8K" selected>8K (not accepted)</option>' in html
    errors = html[html.index('id="field-resolution-errors"') :].split("</div>")[0]
    assert "Must be one of: 1K, 2K, 4K." in errors
    # A field the model no longer has is listed, not silently dropped.
    assert "style: noir — this model has no such field, so it was left out." in html


def test_rerun_into_another_model_carries_every_shared_field_and_flags_the_rest(signed_in, user, catalog):
    task = Task.objects.create(
        owner=user,
        model=catalog[SEED],
        input=seed_input(prompt="carried", size="4:5", resolution="4K", n=3),
        engine="local",
        cost_estimate=0,
        request_id="r",
        request_hash="h",
    )
    html = signed_in.get(reverse("play", args=["gpt-image-2"]), {"from": task.pk}).content.decode()
    assert "carried</textarea>" in html
    for name, value in (("size", "4:5"), ("n", "3")):
        assert f'<option value="{value}" selected>{value} (not accepted)</option>' in html, name
        assert f'id="field-{name}-errors"' in html, name
    # The same resolution in this model's spelling is carried as it is offered here.
    assert '<option value="4k" selected>4k</option>' in html
    assert 'id="field-resolution-errors"' not in html


def test_switching_model_moves_a_field_to_the_new_models_name_for_its_role(signed_in):
    """Gemini calls the aspect ratio `size`, Kling `aspect_ratio`; both are the `aspect` role."""
    html = signed_in.post(
        reverse("pick-model"),
        {"model": "kling-v3", "switch_from": SEED, "prompt": "p", "size": "9:16", "n": "1"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert re.search(r'<select name="aspect_ratio"[^>]*>.*?<option value="9:16" selected>', html, re.S)
    assert "Aspect ratio (9:16)" not in html  # not listed as left out


def test_switching_model_leaves_the_old_models_defaults_behind(signed_in):
    """Values the person never changed are the old model's defaults: the new model starts from
    its own (MiniMax's 768p must not come to Gemini flagged as not accepted)."""
    html = signed_in.post(
        reverse("pick-model"),
        {
            "model": SEED,
            "switch_from": "minimax-hailuo-02",
            "prompt": "p",
            "resolution": "768p",
            "duration": "10",
        },
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "768p" not in html
    assert re.search(r'<select name="resolution"[^>]*>.*?<option value="1K" selected>', html, re.S)
    assert "Duration (s): 10 — this model has no such field" in html  # chosen, so reported


def test_switching_model_keeps_the_prompt_and_every_shared_field(signed_in, catalog):
    response = signed_in.post(
        reverse("pick-model"),
        {
            "model": "doubao-seedream-5-0-lite",
            "switch_from": SEED,
            "prompt": "a typed prompt",
            "size": "16:9",
            "resolution": "4K",
            "n": "2",
            "image_urls": "https://example.com/a.png",
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert response["HX-Push-Url"] == reverse("play", args=["doubao-seedream-5-0-lite"])
    html = response.content.decode()
    assert "a typed prompt</textarea>" in html
    assert '<option value="16:9" selected>' in html
    assert 'name="n" value="2"' in html
    assert "https://example.com/a.png</textarea>" in html
    # Seedream spells its resolutions in lower case: 4K arrives as its 4k.
    assert '<option value="4k" selected>4k</option>' in html
    assert "Carried over from Gemini 3 Pro Image" in html


def test_switching_model_lists_the_fields_the_new_model_lacks(signed_in, catalog):
    html = signed_in.post(
        reverse("pick-model"),
        {"model": "minimax-hailuo-02", "switch_from": SEED, "prompt": "p", "size": "16:9", "n": "3"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "Aspect ratio: 16:9 — this model has no such field, so it was left out." in html
    assert "Images: 3 — this model has no such field, so it was left out." in html
    assert "a typed prompt" not in html and "p</textarea>" in html


def test_without_javascript_the_picker_opens_the_model_and_keeps_a_rerun(signed_in):
    response = signed_in.get(reverse("pick-model"), {"model": "kling-v3", "from": "task_x"})
    assert response["Location"] == reverse("play", args=["kling-v3"]) + "?from=task_x"


def test_rerun_of_another_users_task_is_404(signed_in, other_user, catalog):
    task = Task.objects.create(
        owner=other_user,
        model=catalog[SEED],
        input=seed_input(),
        engine="local",
        cost_estimate=0,
        request_id="r",
        request_hash="h",
    )
    assert signed_in.get(PLAY, {"from": task.pk}).status_code == 404


@pytest.mark.parametrize(
    "slug",
    [
        "doubao-seedream-5-0-lite",
        "gemini-3-pro-image-preview-official",
        "gpt-image-2",
        "kling-v3",
        "minimax-hailuo-02",
        "veo3-1-fast-official",
        "viduq3-pro",
        "wan2-7-r2v",
        "wan2-7-videoedit",
    ],
)
def test_every_catalog_model_renders_and_accepts_a_valid_submit(signed_in, catalog, queue_only, slug):
    entry = catalog[slug]
    url = reverse("play", args=[slug])
    assert signed_in.get(url).status_code == 200
    response = signed_in.post(url, as_form_data(entry, entry.example_input))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Task.objects.get().model == entry


def as_form_data_seed():
    from playground.catalog.models import CatalogEntry

    return as_form_data(CatalogEntry.objects.get(slug=SEED), seed_input(prompt="a fox"))


def test_a_refused_value_that_the_model_does_not_offer_stays_selected_and_flagged(signed_in):
    response = signed_in.post(
        PLAY, {**as_form_data_seed(), "resolution": "8K"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert '<option value="8K" selected>8K (not accepted)</option>' in html
    errors = html[html.index('id="field-resolution-errors"') :].split("</div>")[0]
    assert "Must be one of: 1K, 2K, 4K." in errors
    assert not Task.objects.exists()


def test_a_model_switch_does_not_echo_more_uploads_than_the_field_takes(client, user, catalog, settings):
    """The picker's POST never reads uploaded files (the page does not send them; app.js names the
    fields so the page can ask for them again): files sent anyway cost no memory and are not
    echoed into the page as data URIs."""
    settings.PLAYGROUND_MAX_INPUT_IMAGE_BYTES = 20_000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100_000
    client.force_login(user)
    files = [SimpleUploadedFile(f"{i}.png", b"\x89PNG" + b"x" * 19_000, "image/png") for i in range(30)]
    response = client.post(
        reverse("pick-model"),
        {"model": SEED, "switch_from": SEED, "prompt": "x", "image_urls__file": files},
        headers={"HX-Request": "true"},
    )
    assert response.status_code in (200, 400, 413)
    assert len(response.content) < 2 * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
