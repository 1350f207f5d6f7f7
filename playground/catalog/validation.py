"""Validating a task's input against its model: one rule, used by the API and the browser form.

Text first (`text_errors`, `length_errors`: what `text.py` refuses, and strings over their cap),
then JSON Schema for most of the rest (types, enums, bounds, minLength, maxItems,
additionalProperties); `cross_field_errors` adds what a schema cannot say (a mask only together
with reference images).
"""

from dataclasses import dataclass
from typing import Any

import jsonschema

from playground.engines.media import is_data_uri, iter_media_values

from .models import CatalogEntry
from .text import bad_text, max_text_chars


@dataclass(frozen=True)
class FieldError:
    """One problem with one field; `field` is a path such as `input.image_urls[0]`."""

    field: str
    message: str
    code: str = "invalid"


def field_path(parts: list[Any] | tuple[Any, ...], root: str = "input") -> str:
    path = root
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


_validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}


def validator_for(entry: CatalogEntry) -> jsonschema.protocols.Validator:
    """A compiled validator for the entry's schema, cached on (slug, updated_at) so an edited
    schema is never validated with a stale copy."""
    key = (entry.slug, str(entry.updated_at))
    validator = _validators.get(key) if entry.pk else None
    if validator is None:
        if len(_validators) > 512:
            _validators.clear()
        cls = jsonschema.validators.validator_for(entry.input_schema, jsonschema.Draft202012Validator)
        validator = cls(entry.input_schema, format_checker=cls.FORMAT_CHECKER)
        if entry.pk:  # an unsaved entry has no updated_at to key on
            _validators[key] = validator
    return validator


# JSON Schema types as people say them.
TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a group of named values",
    "null": "empty",
}


def _describe(error: jsonschema.ValidationError) -> tuple[list[Any], str, str]:
    """Turn a jsonschema error into (path, plain-words message, code)."""
    path = list(error.absolute_path)
    kind, value = error.validator, error.validator_value
    if kind == "required":
        missing = [name for name in value if name not in (error.instance or {})]
        return [*path, missing[0] if missing else "?"], "This field is required.", "required"
    if kind == "additionalProperties":
        allowed = set((error.schema or {}).get("properties", {}))
        extra = sorted(k for k in (error.instance or {}) if k not in allowed)
        name = extra[0] if extra else "?"
        return [*path, name], f"This model has no field called “{name}”.", "unknown_field"
    if kind == "enum":
        choices = ", ".join(str(v) for v in value)
        return path, f"Must be one of: {choices}.", "invalid_choice"
    if kind == "minimum":
        return path, f"Must be at least {value}.", "out_of_range"
    if kind == "maximum":
        return path, f"Must be at most {value}.", "out_of_range"
    if kind == "minLength":
        return (
            path,
            ("Must not be empty." if value == 1 else f"Must be at least {value} characters."),
            "too_short",
        )
    if kind == "maxLength":
        return path, f"Must be at most {value} characters.", "too_long"
    if kind == "minItems":
        return path, f"Must have at least {value} item{'s' if value != 1 else ''}.", "too_few"
    if kind == "maxItems":
        return path, f"Must have at most {value} item{'s' if value != 1 else ''}.", "too_many"
    if kind == "type":
        types = value if isinstance(value, list) else [value]
        return path, f"Must be {' or '.join(TYPE_WORDS.get(t, str(t)) for t in types)}.", "wrong_type"
    return path, error.message, "invalid"


def schema_errors(entry: CatalogEntry, data: Any) -> list[FieldError]:
    if not isinstance(data, dict):
        return [FieldError("input", "Must be a JSON object.", "wrong_type")]
    errors = sorted(validator_for(entry).iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    found = []
    for error in errors:
        path, message, code = _describe(error)
        found.append(FieldError(field_path(path), message, code))
    return found


def cross_field_errors(entry: CatalogEntry, data: dict) -> list[FieldError]:
    mask, references = entry.role_field("mask"), entry.role_field("reference_images")
    if mask and data.get(mask) and not data.get(references or ""):
        return [
            FieldError(
                field_path([mask]),
                "A mask needs reference images too.",
                "mask_without_images",
            )
        ]
    return []


def text_errors(value: Any, root: str = "") -> list[FieldError]:
    """An `invalid_text` error for each string or key of JSON data that is not acceptable text
    (see `text.text_problem`), named by its path under `root`."""
    return [FieldError(path or "body", problem, "invalid_text") for path, problem in bad_text(value, root)]


def length_errors(entry: CatalogEntry, data: dict) -> list[FieldError]:
    """Strings longer than their cap: a schema's own `maxLength` (which the schema check names),
    else PLAYGROUND_MAX_TEXT_CHARS, for every string however deep. A data URI in a media field is
    not text: its bytes have their own limit."""
    media = {item.path for item in iter_media_values(entry.input_schema, entry.roles, data)}
    errors: list[FieldError] = []
    pending: list[tuple[Any, Any, tuple]] = [(data, entry.input_schema, ())]
    while pending:
        value, schema, path = pending.pop()
        schema = schema if isinstance(schema, dict) else {}
        if isinstance(value, str):
            cap = max_text_chars(schema)
            capped = "maxLength" not in schema and not (path in media and is_data_uri(value))
            if capped and len(value) > cap:
                message = f"Must be at most {cap} characters."  # as a schema's maxLength says it
                errors.append(FieldError(field_path(path), message, "too_long"))
        elif isinstance(value, dict):
            properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
            for key, item in value.items():
                pending.append((item, properties.get(key, schema.get("additionalProperties")), (*path, key)))
        elif isinstance(value, list):
            pending += [(item, schema.get("items"), (*path, index)) for index, item in enumerate(value)]
    return sorted(errors, key=lambda error: error.field)


def validate_input(entry: CatalogEntry, data: Any) -> list[FieldError]:
    """Every problem with `data` as input to `entry`, text and schema first; empty when it is valid."""
    errors = text_errors(data, "input")
    if isinstance(data, dict):
        errors += length_errors(entry, data)
    errors += schema_errors(entry, data)
    if not errors:
        errors = cross_field_errors(entry, data)
    return errors
