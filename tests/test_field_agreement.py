"""Every field of every catalog model is the same kind of field to the form, the API's checks,
the cost function and the engine: a value the form produces is one the API accepts, as media of
the kind the form offers an upload for (and nothing else as media), priced as the form prices it,
and found by the engine where the form put it."""

import json
from decimal import Decimal

import pytest

from playground.catalog.fields import Field, fields_of
from playground.catalog.loading import ENTRIES_DIR
from playground.catalog.pricing import estimate_cost, priced_fields
from playground.catalog.schema_forms import SchemaForm, as_form_data, file_field, row_field
from playground.catalog.validation import validate_input
from playground.engines.base import EngineJob
from playground.engines.local import LocalEngine
from playground.engines.media import iter_media_values
from playground.generations.inputs import as_payloads, prepare_inputs, release

from .helpers import data_uri, solid_png

ENTRIES = {path.stem: json.loads(path.read_text()) for path in sorted(ENTRIES_DIR.glob("*.json"))}
CASES = [
    pytest.param(data["slug"], name, id=f"{data['slug']}.{name}")
    for data in ENTRIES.values()
    for name in data["input_schema"]["properties"]
]
# The smallest files each kind of media is recognised by (a video or audio file by its container).
MEDIA = {
    "image": data_uri(solid_png(size=(16, 16))),
    "video": data_uri(b"\x1a\x45\xdf\xa3" + bytes(28), "video/webm"),
    "audio": data_uri(b"OggS" + bytes(28), "audio/ogg"),
}


def sample(field: Field):
    """A value a person could give `field`, other than its default where it has a choice."""
    if field.kind == "choice":
        return next((v for v in field.enum if v != field.default), field.enum[0])
    if field.kind in ("integer", "number"):
        return next(v for v in (field.maximum, field.minimum, 1) if v is not None)
    if field.kind == "boolean":
        return not field.default
    if field.kind in ("text", "textarea"):
        return "A quiet harbour at dusk"
    if field.kind == "media":
        return MEDIA[field.media_kind]
    if field.kind == "media_list":
        return [MEDIA[field.media_kind]]
    if field.kind == "string_list":
        return ["one"]
    if field.kind == "object_list":
        return [{sub.name: sample(sub) for sub in field.items}]
    raise AssertionError(f"{field.name}: the form offers no widget for it but a JSON box ({field.kind})")


def media_paths(field: Field) -> dict[tuple, str]:
    """Where `sample(field)` holds media, and of what kind, as the descriptor says."""
    if field.kind == "media":
        return {(field.name,): field.media_kind}
    if field.kind == "media_list":
        return {(field.name, 0): field.media_kind}
    if field.kind == "object_list":
        return {(field.name, 0, sub.name): sub.media_kind for sub in field.items if sub.media_kind}
    return {}


def input_for(entry, fields: dict[str, Field], name: str) -> dict:
    """The model's example input with `name` set to a sample, media everywhere as data URIs (so
    nothing is looked up), and reference images beside a mask (a mask needs them)."""
    data = {**entry.example_input, name: sample(fields[name])}
    for other in fields.values():
        if other.name in data and media_paths(other):
            data[other.name] = sample(other)
    references = entry.role_field("reference_images")
    if fields[name].role == "mask" and references:
        data[references] = sample(fields[references])
    return data


@pytest.mark.parametrize(("slug", "name"), CASES)
def test_the_form_the_api_pricing_and_the_engine_agree_on_the_field(catalog, slug, name):
    entry = catalog[slug]
    fields = {field.name: field for field in fields_of(entry)}
    field = fields[name]
    data = input_for(entry, fields, name)
    expected_media = media_paths(field)

    # The form: an upload exactly where the field holds media, and the sample back as it was.
    form = SchemaForm(entry, data=as_form_data(entry, data))
    assert form.is_valid(), form.errors
    assert form.input_data[name] == data[name]
    if field.kind == "object_list":  # a file input beside each media field of a row
        uploads = {(name, 0, sub.name): sub for sub in field.items if sub.kind == "media"}
        assert all(row_field(field, 0, sub) in form.fields for *_, sub in uploads)
    else:
        uploads = {path: field for path in expected_media} if file_field(field) in form.fields else {}
    assert uploads.keys() == expected_media.keys()
    for path, kind in expected_media.items():
        assert uploads[path].accept.startswith(kind), f"{path} offers {uploads[path].accept} for {kind}"

    # The API: the form's input is valid, and exactly these values are checked as media, each as
    # its kind (a video data URI checked as an image would be refused).
    assert validate_input(entry, form.input_data) == []
    errors, prepared = prepare_inputs(entry, as_payloads(entry, form.input_data))
    try:
        assert errors == []
        checked = {item.path: item.kind for item in prepared if item.path[0] == name}
    finally:
        release(prepared)
    assert checked == expected_media

    # Pricing: a field the price depends on is one the form prices as it is typed or chosen, and
    # the form's price is the API's.
    rule = entry.pricing
    depends = name in {*(rule.get("unit_price_by") or {}), *(rule.get("multipliers") or {})} or (
        (field.role == "count" and rule.get("unit", "task") != "task")
        or (field.role == "duration" and rule.get("unit") == "second")
    )
    assert (name in priced_fields(entry)) == depends
    if name in form.fields:
        assert (form.fields[name].widget.attrs.get("class") == "priced") == depends
    assert estimate_cost(entry, form.pricing_input()) == estimate_cost(entry, form.input_data) > Decimal(0)

    # The engine: given the task as the runner gives it, it reads the value where the form put it
    # and finds the same media, of the same kinds.
    job = EngineJob(
        task_id="t1",
        owner_id=1,
        model_slug=entry.slug,
        kind=entry.kind,
        output_key=entry.output_key,
        roles=dict(entry.roles),
        input_schema=entry.input_schema,
        input=form.input_data,
    )
    found = {item.path: item.kind for item in iter_media_values(job.input_schema, job.roles, job.input)}
    assert {path: kind for path, kind in found.items() if path[0] == name} == expected_media
    if field.role:
        assert job.role(field.role) == data[name]
    if field.role in ("reference_images", "mask"):
        sources = [where for where, _ in LocalEngine()._sources(job, field.role)]
        assert len(sources) == len(expected_media) >= 1


def test_every_catalog_model_is_covered(catalog):
    assert set(catalog) == {data["slug"] for data in ENTRIES.values()}
    assert len(CASES) == sum(len(data["input_schema"]["properties"]) for data in ENTRIES.values())


def test_a_field_with_only_an_accept_hint_is_an_upload_in_the_form_as_it_is_media_to_the_api(catalog):
    entry = catalog["gpt-image-2"]
    entry.input_schema["properties"]["style_image"] = {
        "type": "string",
        "x-playground": {"accept": "video/*"},
    }
    entry.save()
    field = next(f for f in fields_of(entry) if f.name == "style_image")
    assert (field.kind, field.media_kind, field.accept) == ("media", "video", "video/*")
    assert 'accept="video/*"' in str(SchemaForm(entry)[file_field(field)])
    data = {**entry.example_input, "style_image": MEDIA["video"]}
    assert [item.path for item in iter_media_values(entry.input_schema, entry.roles, data)] == [
        ("style_image",)
    ]
