"""The schema -> form mapping, for every type and hint, and the round trip back to the input."""

import hashlib
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from playground.catalog.models import CatalogEntry
from playground.catalog.schema_forms import SchemaForm, field_specs, initial_from_input
from playground.engines.media import UploadedMedia
from playground.generations.models import InputFile, Task

from .helpers import ROOT
from .html_forms import BrowserForm


def entry_for(properties, required=(), roles=None):
    return CatalogEntry(
        slug="probe",
        title="Probe",
        kind="image",
        output_key="images",
        input_schema={"type": "object", "properties": properties, "required": list(required)},
        roles=roles or {},
        pricing={"unit": "image", "unit_price": 0.01},
    )


def spec_of(properties, name, **kwargs):
    return next(s for s in field_specs(entry_for(properties, **kwargs)) if s.name == name)


def widget_html(properties, name, **kwargs):
    form = SchemaForm(entry_for(properties, **kwargs))
    return str(form[name])


def png_upload(name="ref.png", size=(30, 20)):
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def test_a_string_is_a_text_input_with_length_attributes():
    html = widget_html(
        {"name": {"type": "string", "minLength": 2, "maxLength": 9}}, "name", required=["name"]
    )
    assert (
        'type="text"' in html and 'minlength="2"' in html and 'maxlength="9"' in html and "required" in html
    )


def test_a_textarea_hint_gives_a_textarea_with_its_rows():
    html = widget_html({"p": {"type": "string", "x-playground": {"widget": "textarea", "rows": 6}}}, "p")
    assert html.startswith("<textarea") and 'rows="6"' in html


def test_an_enum_is_a_select_with_the_default_selected():
    html = widget_html({"size": {"type": "string", "enum": ["1:1", "16:9"], "default": "16:9"}}, "size")
    assert html.startswith("<select") and '<option value="16:9" selected>' in html


def test_an_optional_enum_without_default_offers_a_blank_choice():
    html = widget_html({"mode": {"type": "string", "enum": ["a", "b"]}}, "mode")
    assert '<option value="" selected>' in html


def test_an_integer_enum_is_a_select_that_cleans_to_integers():
    props = {"duration": {"type": "integer", "enum": [5, 10], "default": 5}}
    form = SchemaForm(entry_for(props), data={"duration": "10"})
    assert form.is_valid(), form.errors
    assert form.input_data == {"duration": 10}


def test_integers_and_numbers_carry_min_max_and_step():
    html = widget_html({"n": {"type": "integer", "minimum": 1, "maximum": 4}}, "n")
    assert 'type="number"' in html and 'min="1"' in html and 'max="4"' in html
    assert 'step="0.5"' in widget_html({"g": {"type": "number", "multipleOf": 0.5}}, "g")
    assert 'step="any"' in widget_html({"g": {"type": "number"}}, "g")


def test_a_seed_takes_values_up_to_4294967295_and_minus_one():
    props = {"seed": {"type": "integer", "minimum": -1, "maximum": 4294967295, "default": -1}}
    for value in ("-1", "4294967295"):
        form = SchemaForm(entry_for(props), data={"seed": value})
        assert form.is_valid(), form.errors
        assert form.input_data["seed"] == int(value)
    assert not SchemaForm(entry_for(props), data={"seed": "4294967296"}).is_valid()


def test_a_boolean_is_a_switch_and_unchecked_means_false():
    props = {"audio": {"type": "boolean", "default": True}}
    assert 'role="switch"' in widget_html(props, "audio")
    form = SchemaForm(entry_for(props), data={})
    assert form.is_valid()
    assert form.input_data == {"audio": False}


def test_a_file_upload_array_has_a_file_input_honouring_accept_and_multiple():
    props = {
        "refs": {
            "type": "array",
            "items": {"type": "string"},
            "maxItems": 3,
            "x-playground": {"widget": "file-upload", "accept": "image/png", "multiple": True},
        }
    }
    html = widget_html(props, "refs__file")
    assert 'type="file"' in html and 'accept="image/png"' in html and "multiple" in html
    assert spec_of(props, "refs").max_items == 3


def test_multiple_false_gives_a_single_file_input():
    props = {
        "frame": {
            "type": "array",
            "items": {"type": "string"},
            "x-playground": {"widget": "file-upload", "multiple": False, "uploadKind": "image"},
        }
    }
    html = widget_html(props, "frame__file")
    assert "multiple" not in html and 'accept="image/*"' in html


def test_upload_kinds_video_and_audio_set_their_accept():
    video = {"v": {"type": "string", "x-playground": {"widget": "file-upload", "uploadKind": "video"}}}
    audio = {"a": {"type": "string", "x-playground": {"uploadKind": "audio"}}}
    assert 'accept="video/*"' in widget_html(video, "v__file")
    assert 'accept="audio/*"' in widget_html(audio, "a__file")


def test_uploads_stay_files_until_submitted_and_pasted_urls_are_kept():
    props = {
        "refs": {"type": "array", "items": {"type": "string"}, "x-playground": {"widget": "file-upload"}},
    }
    upload = png_upload()
    form = SchemaForm(
        entry_for(props),
        data={"refs": "https://example.com/a.png\n\n"},
        files={"refs__file": upload},
    )
    assert form.is_valid(), form.errors
    first, second = form.input_data["refs"]
    assert first == "https://example.com/a.png"
    assert isinstance(second, UploadedMedia) and second.upload is upload
    assert second.placeholder() == "data:image/png;base64,"


def test_a_media_role_without_hints_still_gets_a_file_input():
    props = {"mask_url": {"type": "string"}, "image_urls": {"type": "array", "items": {"type": "string"}}}
    roles = {"mask": "mask_url", "reference_images": "image_urls"}
    assert 'type="file"' in widget_html(props, "mask_url__file", roles=roles)


def test_title_description_default_and_required_become_label_help_initial_and_marker():
    props = {"p": {"type": "string", "title": "Prompt", "description": "Say it.", "default": "hi"}}
    form = SchemaForm(entry_for(props, required=["p"]))
    field = form.fields["p"]
    assert (field.label, field.help_text, field.initial, field.required) == ("Prompt", "Say it.", "hi", True)


def test_advanced_fields_are_grouped_apart():
    props = {"a": {"type": "string"}, "b": {"type": "string", "x-playground": {"advanced": True}}}
    groups = SchemaForm(entry_for(props)).groups()
    assert [s.name for s in groups["main"]] == ["a"]
    assert [s.name for s in groups["advanced"]] == ["b"]


def test_an_advanced_field_with_an_error_opens_its_section():
    props = {"b": {"type": "integer", "maximum": 3, "x-playground": {"advanced": True}}}
    form = SchemaForm(entry_for(props), data={"b": "9"})
    assert not form.is_valid()
    assert form.advanced_has_errors()


@pytest.mark.parametrize(
    "hints",
    [{"widget": "slider"}, {"widget": 42}, "not-a-dict", {"rows": "many"}, {"unknown": True}],
)
def test_unknown_hints_fall_back_to_the_plain_widget(hints):
    props = {"x": {"type": "integer", "minimum": 0, "x-playground": hints, "x-vendor": {"a": 1}}}
    html = widget_html(props, "x")
    assert 'type="number"' in html


def test_unknown_keywords_and_types_never_break_the_form():
    props = {
        "odd": {"type": "object", "properties": {"k": {"type": "string"}}, "patternProperties": {}},
        "untyped": {"description": "anything"},
    }
    form = SchemaForm(entry_for(props), data={"odd": '{"k": "v"}', "untyped": "3"})
    assert form.is_valid(), form.errors
    assert form.input_data == {"odd": {"k": "v"}, "untyped": 3}
    bad = SchemaForm(entry_for(props), data={"odd": "{nope"})
    assert not bad.is_valid()
    assert bad.errors["odd"] == [
        "This is not valid JSON (expecting property name enclosed in double quotes at line 1, column 2)."
    ]


def test_an_array_of_objects_is_a_repeatable_set_of_rows(catalog):
    entry = catalog["wan2-7-r2v"]
    form = SchemaForm(
        entry,
        data={
            "prompt": "p",
            "size": "16:9",
            "resolution": "1080P",
            "duration": "5",
            "image_with_roles__0__url": "https://example.com/a.png",
            "image_with_roles__0__role": "reference_image",
            "image_with_roles__1__role": "reference_image",  # an untouched row: not an item
            "image_with_roles__2__url": "https://example.com/c.png",
            "image_with_roles__2__role": "reference_image",
        },
    )
    assert form.is_valid(), form.errors
    assert form.input_data["image_with_roles"] == [
        {"url": "https://example.com/a.png", "role": "reference_image"},
        {"url": "https://example.com/c.png", "role": "reference_image"},
    ]


def test_a_schema_error_lands_beside_its_field():
    props = {"n": {"type": "integer"}, "refs": {"type": "array", "items": {"type": "string"}, "maxItems": 1}}
    form = SchemaForm(entry_for(props), data={"refs": "a\nb"})
    assert not form.is_valid()
    assert form.errors["refs"] == ["Must have at most 1 item."]


CATALOG_FILES = {
    path.stem: json.loads(path.read_text()) for path in (ROOT / "playground/catalog/entries").glob("*.json")
}
ENTRIES = sorted(CATALOG_FILES)
WITH_SWITCHES = [
    slug
    for slug, entry in sorted(CATALOG_FILES.items())
    if any(prop.get("type") == "boolean" for prop in entry["input_schema"]["properties"].values())
]


def the_page_form(client, slug) -> BrowserForm:
    page = client.get(f"/play/{slug}")
    assert page.status_code == 200
    return BrowserForm(page.content.decode(), "run-form")


def fill_in(form: BrowserForm, example: dict) -> None:
    """What a person does to ask for `example`: type, choose, tick, paste URLs one per line, and
    fill one row of a repeatable set per object."""
    for name, value in example.items():
        if isinstance(value, list) and all(isinstance(item, dict) for item in value):
            for row, item in enumerate(value):
                for sub, sub_value in item.items():
                    form.enter(f"{name}__{row}__{sub}", sub_value)
        elif isinstance(value, list):
            form.type(name, "\n".join(value))
        else:
            form.enter(name, value)


def submitted_input(client, slug, form: BrowserForm) -> dict:
    response = client.post(f"/play/{slug}", form.submission())
    assert response.status_code == 302, response.content.decode()[-3000:]
    return Task.objects.get(pk=response.url.rstrip("/").rsplit("/", 1)[-1]).input


def meant(entry, example: dict) -> dict:
    """The input a person means who fills in `example` and leaves the rest as the page shows it:
    defaults pre-filled, switches without a default unticked (false)."""
    properties = entry.input_schema["properties"]
    untouched = {
        name: prop.get("default", False)
        for name, prop in properties.items()
        if "default" in prop or prop.get("type") == "boolean"
    }
    return {**untouched, **example}


def stored(upload) -> str:
    """The reference a submit made of `upload`: the input file holding its bytes."""
    row = InputFile.objects.get(sha256=hashlib.sha256(upload.file.getvalue()).hexdigest())
    return f"http://testserver/inputs/{row.pk}/{row.name}"


def test_the_examples_cover_the_whole_catalog(catalog):
    assert sorted(catalog) == ENTRIES
    assert WITH_SWITCHES  # some model has a switch to flip


@pytest.mark.parametrize("slug", ENTRIES)
def test_it_turns_the_playground_page_filled_with_the_example_into_that_input(
    client, user, catalog, queue_only, slug
):
    client.force_login(user)
    entry = catalog[slug]
    form = the_page_form(client, slug)
    fill_in(form, entry.example_input)
    assert submitted_input(client, slug, form) == meant(entry, entry.example_input)


@pytest.mark.parametrize("slug", WITH_SWITCHES)
def test_it_submits_the_switches_a_person_flips(client, user, catalog, queue_only, slug):
    client.force_login(user)
    entry = catalog[slug]
    expected = meant(entry, entry.example_input)
    form = the_page_form(client, slug)
    fill_in(form, entry.example_input)
    # The schema's switches, not the batch controls' checkboxes (Vary's values, Also run on)
    switches = [
        c
        for c in form.controls
        if c.type == "checkbox" and not c.name.startswith("vary__") and c.name != "also_run_on"
    ]
    assert {c.name for c in switches} == {n for n, v in expected.items() if isinstance(v, bool)}
    for switch in switches:
        form.tick(switch.name, not expected[switch.name])
        expected[switch.name] = not expected[switch.name]
    assert submitted_input(client, slug, form) == expected


def test_it_turns_a_file_uploaded_in_a_row_into_an_input_file_beside_a_pasted_url(
    client, user, catalog, queue_only
):
    client.force_login(user)
    entry = catalog["wan2-7-r2v"]
    form = the_page_form(client, "wan2-7-r2v")
    fill_in(form, entry.example_input)  # row 1: a pasted URL
    upload = png_upload("character.png")
    form.attach("image_with_roles__1__url__file", upload)  # row 2: an uploaded image
    form.choose("image_with_roles__1__role", "reference_image")
    submitted = submitted_input(client, "wan2-7-r2v", form)
    expected = meant(entry, entry.example_input)
    expected["image_with_roles"] = [
        *entry.example_input["image_with_roles"],
        {"url": stored(upload), "role": "reference_image"},
    ]
    assert submitted == expected
    assert stored(upload).endswith("/character.png")


def test_it_adds_uploaded_files_after_the_pasted_urls(client, user, catalog, queue_only):
    client.force_login(user)
    entry = catalog["gemini-3-pro-image-preview-official"]
    form = the_page_form(client, entry.slug)
    fill_in(form, {**entry.example_input, "image_urls": ["https://example.com/a.png"]})
    first, second = png_upload("one.png"), png_upload("two.png", size=(8, 8))
    form.attach("image_urls__file", first)
    form.attach("image_urls__file", second)
    submitted = submitted_input(client, entry.slug, form)
    expected = {
        **meant(entry, entry.example_input),
        "image_urls": ["https://example.com/a.png", stored(first), stored(second)],
    }
    assert submitted == expected


@pytest.mark.django_db
def test_initial_values_of_a_task_input_fill_the_form(catalog):
    entry = catalog["gemini-3-pro-image-preview-official"]
    data = {"prompt": "x", "size": "4:3", "n": 2, "image_urls": ["https://a/1.png", "https://a/2.png"]}
    initial = initial_from_input(entry, data)
    assert initial == {"prompt": "x", "size": "4:3", "n": 2, "image_urls": "https://a/1.png\nhttps://a/2.png"}
