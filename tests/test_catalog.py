"""The catalog (entry files, the cost function, input validation, the import commands) and the
API-key commands and services."""

import hashlib
import io
import json
from datetime import time as datetime_time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from playground.catalog.loading import ENTRIES_DIR, read_entry_file, validate_entry
from playground.catalog.models import CatalogEntry
from playground.catalog.pricing import estimate_cost
from playground.catalog.validation import validate_input
from playground.keys.models import ApiKey
from playground.keys.services import KEY_PATTERN, KEY_PREFIX, KeyRejected, authenticate_key, issue_key

SEED = "gemini-3-pro-image-preview-official"
ENTRY_FILES = sorted(ENTRIES_DIR.glob("*.json"))


def seed_input(**overrides):
    return {
        "prompt": "A red fox crossing fresh snow at dawn",
        "size": "1:1",
        "resolution": "1K",
        "n": 1,
    } | overrides


# --- entry files ---------------------------------------------------------------------------------


def test_it_ships_nine_entries():
    assert len(ENTRY_FILES) == 9
    assert SEED in {path.stem for path in ENTRY_FILES}


@pytest.mark.parametrize("path", ENTRY_FILES, ids=lambda path: path.stem)
def test_every_shipped_entry_file_loads(db, path):
    data = read_entry_file(path)
    entry = validate_entry(data)

    assert entry["slug"] == path.stem
    assert entry["roles"], "every entry has at least a prompt or media role"
    assert entry["pricing"]["unit"] in ("image", "second", "task")

    call_command("import_model", str(path), stdout=io.StringIO())
    stored = CatalogEntry.objects.get(slug=path.stem)
    assert stored.input_schema == data["input_schema"]
    assert stored.kind == data["kind"]


def test_the_seed_schema_is_the_seed(catalog):
    schema = catalog[SEED].input_schema
    properties = schema["properties"]

    assert schema["type"] == "object"
    assert schema["required"] == ["prompt"]
    assert schema["additionalProperties"] is False
    assert set(properties) == {"prompt", "size", "resolution", "n", "image_urls", "mask_url"}
    assert properties["image_urls"]["maxItems"] == 14
    assert properties["image_urls"]["minItems"] == 1
    assert len(properties["size"]["enum"]) == 11
    assert properties["size"]["enum"][0] == "auto"
    assert properties["resolution"]["enum"] == ["1K", "2K", "4K"]
    assert (properties["n"]["minimum"], properties["n"]["maximum"]) == (1, 4)
    assert catalog[SEED].example_cost_estimate == Decimal("0.1206")


# --- the cost function ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENTRY_FILES, ids=lambda path: path.stem)
def test_every_entry_estimates_its_example_at_its_example_cost(catalog, path):
    data = json.loads(path.read_text(encoding="utf-8"))
    expected = data["pricing"].get("example_estimate", data["example_cost_estimate"])

    assert estimate_cost(catalog[data["slug"]], data["example_input"]) == Decimal(str(expected))


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "0.1206"),
        ({"n": 3}, "0.3618"),
        ({"resolution": "2K"}, "0.1206"),
        ({"resolution": "4K"}, "0.216"),
        ({"resolution": "4K", "n": 2}, "0.432"),
        ({"resolution": "1k"}, "0.1206"),
        ({"resolution": "4k"}, "0.216"),
    ],
)
def test_it_prices_the_seed(catalog, overrides, expected):
    assert estimate_cost(catalog[SEED], seed_input(**overrides)) == Decimal(expected)


def test_it_prices_video_seconds(catalog):
    kling = catalog["kling-v3"]

    assert estimate_cost(kling, {"prompt": "p", "duration": 10}) == Decimal("0.1512")
    assert estimate_cost(kling, {"prompt": "p", "duration": 5, "mode": "pro"}) == Decimal("0.1058")
    assert estimate_cost(kling, {"prompt": "p", "duration": 10}, seconds=3) == Decimal("0.0454")


# --- input validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        (seed_input(size="7:3"), "input.size", "invalid_choice"),
        ({"size": "1:1"}, "input.prompt", "required"),
        (seed_input(extra=1), "input.extra", "unknown_field"),
        (seed_input(n=5), "input.n", "out_of_range"),
        (seed_input(n="2"), "input.n", "wrong_type"),
        (seed_input(prompt=""), "input.prompt", "too_short"),
        (seed_input(image_urls=["https://example.com/a.png"] * 15), "input.image_urls", "too_many"),
        (seed_input(image_urls=[]), "input.image_urls", "too_few"),
        (seed_input(image_urls=[3]), "input.image_urls[0]", "wrong_type"),
        (seed_input(mask_url="https://example.com/m.png"), "input.mask_url", "mask_without_images"),
    ],
    ids=[
        "enum",
        "required",
        "unknown",
        "n=5",
        "n-type",
        "empty-prompt",
        "15-images",
        "0-images",
        "item-type",
        "mask-alone",
    ],
)
def test_it_names_the_field_at_fault(catalog, data, field, code):
    errors = validate_input(catalog[SEED], data)

    assert [(error.field, error.code) for error in errors] == [(field, code)]
    assert errors[0].message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (seed_input(extra=1), "This model has no field called “extra”."),
        (seed_input(n="2"), "Must be a whole number."),
        (seed_input(image_urls=[3]), "Must be text."),
        (seed_input(mask_url="https://example.com/m.png"), "A mask needs reference images too."),
    ],
    ids=["unknown", "n-type", "item-type", "mask-alone"],
)
def test_its_messages_are_plain_words_the_field_name_stays_in_field(catalog, data, message):
    [error] = validate_input(catalog[SEED], data)

    assert error.message == message
    assert error.field.startswith("input.")


def test_it_accepts_a_valid_seed_input(catalog):
    data = seed_input(image_urls=["https://example.com/a.png"], mask_url="https://example.com/m.png")

    assert validate_input(catalog[SEED], data) == []


def test_it_refuses_an_input_that_is_not_an_object(catalog):
    [error] = validate_input(catalog[SEED], ["prompt"])

    assert (error.field, error.code) == ("input", "wrong_type")


# --- import_model and load_catalog ---------------------------------------------------------------


def write(tmp_path, data, name="entry.json"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def seed_file() -> dict:
    return read_entry_file(ENTRIES_DIR / f"{SEED}.json")


def test_import_model_adds_a_new_model(catalog, tmp_path):
    data = seed_file() | {"slug": "my-new-model", "title": "My New Model"}
    out = io.StringIO()

    call_command("import_model", str(write(tmp_path, data)), stdout=out)

    assert out.getvalue().startswith("Added my-new-model (image, 6 fields)")
    entry = CatalogEntry.objects.get(slug="my-new-model")
    assert entry.title == "My New Model"
    assert entry.input_schema == data["input_schema"]
    assert entry.roles == data["roles"]
    assert CatalogEntry.objects.count() == 10


def test_import_model_updates_an_existing_model(catalog, tmp_path):
    data = seed_file() | {"title": "Gemini, retitled"}
    out = io.StringIO()

    call_command("import_model", str(write(tmp_path, data)), stdout=out)

    assert out.getvalue().startswith(f"Updated {SEED}")
    assert CatalogEntry.objects.get(slug=SEED).title == "Gemini, retitled"
    assert CatalogEntry.objects.count() == 9


def test_import_model_refuses_a_file_that_is_not_json(db, tmp_path):
    path = write(tmp_path, "{ this is not json")

    with pytest.raises(CommandError, match="not valid JSON"):
        call_command("import_model", str(path), stdout=io.StringIO())

    assert not CatalogEntry.objects.exists()


def test_import_model_refuses_a_missing_file(db, tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_model", str(tmp_path / "absent.json"), stdout=io.StringIO())


def test_import_model_refuses_an_invalid_json_schema(db, tmp_path):
    data = {
        "slug": "broken",
        "title": "Broken",
        "kind": "image",
        "output_key": "images",
        "input_schema": {"type": "object", "properties": {"x": {"type": "strnig"}}},
    }

    with pytest.raises(CommandError, match="not valid JSON Schema") as caught:
        call_command("import_model", str(write(tmp_path, data)), stdout=io.StringIO())

    assert "properties/x/type" in str(caught.value)
    assert not CatalogEntry.objects.filter(slug="broken").exists()


def test_import_model_refuses_an_entry_without_a_slug(db, tmp_path):
    data = seed_file()
    del data["slug"]

    with pytest.raises(CommandError, match="`slug` is missing"):
        call_command("import_model", str(write(tmp_path, data)), stdout=io.StringIO())


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"kind": "audio"}, "`kind` must be image or video"),
        ({"engine": "nowhere"}, "`engine` must be one of"),
        ({"roles": {"prompt": "caption"}}, "`roles` names fields the schema lacks: caption"),
        ({"pricing": {"unit": "token", "unit_price": 1}}, "`pricing` needs a `unit`"),
        ({"example_input": {"prompt": "p", "n": 9}}, "`example_input` does not match the schema"),
        ({"input_schema": {"type": "array"}}, "`input_schema` must be a JSON Schema of type object"),
    ],
)
def test_import_model_names_the_problem(db, tmp_path, change, problem):
    with pytest.raises(CommandError, match=problem):
        call_command("import_model", str(write(tmp_path, seed_file() | change)), stdout=io.StringIO())

    assert not CatalogEntry.objects.exists()


def test_import_model_refuses_a_file_that_is_not_an_object(db, tmp_path):
    with pytest.raises(CommandError, match="must hold a JSON object"):
        call_command("import_model", str(write(tmp_path, "[1, 2]")), stdout=io.StringIO())


def test_load_catalog_is_idempotent(db):
    out = io.StringIO()

    call_command("load_catalog", stdout=out)
    first = {entry.slug: entry.pk for entry in CatalogEntry.objects.all()}
    call_command("load_catalog", stdout=out)

    assert CatalogEntry.objects.count() == 9
    assert {entry.slug: entry.pk for entry in CatalogEntry.objects.all()} == first
    assert out.getvalue().count("Catalog: 9 models") == 2


# --- issue_key -----------------------------------------------------------------------------------


def test_issue_key_prints_only_a_working_secret(user):
    out = io.StringIO()

    call_command("issue_key", "alice", "--name", "cli", stdout=out)

    secret = out.getvalue().strip()
    assert out.getvalue() == secret + "\n"
    assert secret.startswith(KEY_PREFIX)
    assert KEY_PATTERN.match(secret)
    assert len(secret) == len("pg_live_") + 38
    key = authenticate_key(secret)
    assert key.user == user
    assert key.name == "cli"


def test_issue_key_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        call_command("issue_key", "nobody", stdout=io.StringIO())

    assert not ApiKey.objects.exists()


# --- keys ----------------------------------------------------------------------------------------


def one_character_changed(secret: str, position: int) -> str:
    replacement = "A" if secret[position] != "A" else "B"
    return secret[:position] + replacement + secret[position + 1 :]


@pytest.mark.parametrize("position", [len(KEY_PREFIX), len(KEY_PREFIX) + 20, -1])
def test_a_mistyped_key_is_refused_without_a_query(key, django_assert_num_queries, position):
    mistyped = one_character_changed(key, position % len(key))

    with django_assert_num_queries(0), pytest.raises(KeyRejected) as caught:
        authenticate_key(mistyped)

    assert caught.value.code == "invalid_key"


@pytest.mark.parametrize("secret", ["", None])
def test_a_missing_key_is_refused(db, secret):
    with pytest.raises(KeyRejected) as caught:
        authenticate_key(secret)

    assert caught.value.code == "missing_key"


def test_a_well_formed_unknown_key_is_refused(key):
    ApiKey.objects.all().delete()

    with pytest.raises(KeyRejected) as caught:
        authenticate_key(key)

    assert caught.value.code == "invalid_key"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("disabled_at", timezone.now, "key_disabled"),
        ("deleted_at", timezone.now, "key_deleted"),
        ("expires_at", lambda: timezone.now() - timedelta(seconds=1), "key_expired"),
    ],
)
def test_an_unusable_key_is_refused_with_its_reason(key, field, value, code):
    ApiKey.objects.update(**{field: value()})

    with pytest.raises(KeyRejected) as caught:
        authenticate_key(key)

    assert caught.value.code == code


def test_a_key_of_a_disabled_account_is_refused(key, user):
    user.is_active = False
    user.save()

    with pytest.raises(KeyRejected) as caught:
        authenticate_key(key)

    assert caught.value.code == "key_disabled"


def test_a_key_expiring_later_works_and_records_its_use(key):
    ApiKey.objects.update(expires_at=timezone.now() + timedelta(days=1))

    found = authenticate_key(key, ip="203.0.113.7")

    stored = ApiKey.objects.get(pk=found.pk)
    assert stored.last_used_ip == "203.0.113.7"
    assert stored.last_used_at is not None


def test_the_stored_row_holds_no_clear_secret(user):
    issued = issue_key(user, name="stored")
    row = ApiKey.objects.filter(pk=issued.key.pk).values().get()

    assert all(issued.secret not in str(value) for value in row.values())
    assert row["secret_hash"] == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert len(row["prefix"]) < len(issued.secret)


def test_issue_key_takes_a_budget_and_a_last_day(user):
    out = io.StringIO()
    last_day = timezone.localdate() + timedelta(days=3)

    call_command("issue_key", "alice", "--budget", "2.50", "--expires", last_day.isoformat(), stdout=out)

    key = authenticate_key(out.getvalue().strip())
    assert key.budget == Decimal("2.5")
    assert timezone.localtime(key.expires_at).date() == last_day
    assert timezone.localtime(key.expires_at).time() >= datetime_time(23, 59, 59)  # through the whole day


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--budget", "0", "more than 0"),
        ("--budget", "-3", "more than 0"),
        ("--budget", "lots", "an amount in dollars"),
        ("--budget", "NaN", "more than 0"),
        ("--budget", "0.00001", "at most 4 decimals"),
        ("--expires", "2026-13-01", "YYYY-MM-DD"),
        ("--expires", "yesterday", "YYYY-MM-DD"),
    ],
)
def test_issue_key_refuses_a_bad_budget_or_day_and_issues_nothing(user, option, value, message):
    with pytest.raises(CommandError, match=message):
        call_command("issue_key", "alice", option, value, stdout=io.StringIO())
    assert not ApiKey.objects.exists()


def test_issue_key_refuses_a_last_day_that_has_passed(user):
    with pytest.raises(CommandError, match="a day after today"):
        call_command(
            "issue_key", "alice", "--expires", timezone.localdate().isoformat(), stdout=io.StringIO()
        )
    assert not ApiKey.objects.exists()
