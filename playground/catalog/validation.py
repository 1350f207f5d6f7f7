"""Validating a task's input against its model: one rule, used by the API and the browser form.

JSON Schema says most of it (types, enums, bounds, minLength, maxItems, additionalProperties);
`cross_field_errors` adds what a schema cannot say (a mask only together with reference images).
"""

from dataclasses import dataclass
from typing import Any

import jsonschema

from .models import CatalogEntry


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


def validate_input(entry: CatalogEntry, data: Any) -> list[FieldError]:
    """Every problem with `data` as input to `entry`, schema first; empty when it is valid."""
    errors = schema_errors(entry, data)
    if not errors:
        errors = cross_field_errors(entry, data)
    return errors
