"""What each input field of a model is: one descriptor per schema property, built once per schema.

A `Field` says what kind of value a field holds (its `kind`, which is also the form's widget), the
media it holds and the role it plays, its bounds, choices, default, whether it is required or
advanced, and its widget hints. The form (`schema_forms`), the cost function (`pricing`) and the
API's checks read it instead of the schema, so they cannot disagree on what a field is.

What is media is decided once, by `engines.media.media_kind`: the engines are given only the task's
data (schema, roles, input) and find its media with that same rule, so a field the form offers an
upload for is the field the API checks and stores as media and the engine reads as one.

Kinds: text textarea choice integer number boolean media media_list string_list object_list json.
"""

from dataclasses import dataclass
from typing import Any

from playground.engines.media import media_kind

from .models import CatalogEntry

# The kinds whose value the form can price as it is typed or chosen (see `pricing.priced_fields`).
PRICED_KINDS = ("choice", "integer", "number", "boolean")
MEDIA_FIELD_KINDS = ("media", "media_list")


@dataclass(frozen=True)
class Field:
    name: str
    schema: dict
    kind: str
    media_kind: str  # image | video | audio; "" for a field that holds no media
    role: str  # the role the model's entry gives this field ("prompt", "mask", …), else ""
    label: str
    help_text: str
    required: bool
    advanced: bool
    hints: dict  # the `x-playground` hints as given (unknown ones are ignored)
    type: str | None = None
    default: Any = None
    enum: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    multiple_of: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    max_items: int | None = None
    accept: str = ""  # what a file input offers: the `accept` hint, else the media kind's type
    multiple: bool = False  # a media list that takes several files at once
    items: tuple["Field", ...] = ()  # an object list's fields

    @property
    def is_media(self) -> bool:
        return self.kind in MEDIA_FIELD_KINDS

    @property
    def priced_kind(self) -> bool:
        return self.kind in PRICED_KINDS


def widget_hints(schema: dict) -> dict:
    hints = schema.get("x-playground")
    return hints if isinstance(hints, dict) else {}


def field_kind(schema: dict, media: str) -> str:
    """The kind of value a property holds: a string or a list of strings that holds media is
    media, whatever other keywords it has."""
    kind_of_type = schema.get("type")
    if kind_of_type == "string":
        if media:
            return "media"
        if "enum" in schema:
            return "choice"
        return "textarea" if widget_hints(schema).get("widget") == "textarea" else "text"
    if kind_of_type in ("integer", "number"):
        return "choice" if "enum" in schema else kind_of_type
    if kind_of_type == "boolean":
        return "boolean"
    if kind_of_type == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        if items.get("type") == "object" and isinstance(items.get("properties"), dict):
            return "object_list"
        if items.get("type", "string") == "string":
            return "media_list" if media else "string_list"
    return "json"


def describe_field(name: str, schema: dict, required: bool, role: str = "") -> Field:
    hints = widget_hints(schema)
    media = media_kind(schema, role)
    kind = field_kind(schema, media)
    items: tuple[Field, ...] = ()
    if kind == "object_list":
        item_schema = schema["items"]
        item_required = set(item_schema.get("required", []))
        items = tuple(
            describe_field(sub, sub_schema, sub in item_required)
            for sub, sub_schema in item_schema["properties"].items()
            if isinstance(sub_schema, dict)
        )
    accept = str(hints.get("accept") or "")
    return Field(
        name=name,
        schema=schema,
        kind=kind,
        media_kind=media,
        role=role,
        label=str(schema.get("title") or name.replace("_", " ").capitalize()),
        help_text=str(schema.get("description") or ""),
        required=required,
        advanced=bool(hints.get("advanced")),
        hints=hints,
        type=schema.get("type") if isinstance(schema.get("type"), str) else None,
        default=schema.get("default"),
        enum=tuple(schema["enum"]) if isinstance(schema.get("enum"), list) else None,
        minimum=schema.get("minimum"),
        maximum=schema.get("maximum"),
        multiple_of=schema.get("multipleOf"),
        min_length=schema.get("minLength"),
        max_length=schema.get("maxLength"),
        max_items=schema.get("maxItems"),
        accept=accept or (f"{media}/*" if kind in MEDIA_FIELD_KINDS else ""),
        multiple=kind == "media_list" and hints.get("multiple", True) is not False,
        items=items,
    )


def describe(schema: dict, roles: dict) -> tuple[Field, ...]:
    """The fields of an input schema in schema order; `roles` maps role names to field names."""
    required = set(schema.get("required", []))
    role_of_field = {field: role for role, field in (roles or {}).items()}
    return tuple(
        describe_field(name, prop, name in required, role_of_field.get(name, ""))
        for name, prop in (schema.get("properties") or {}).items()
        if isinstance(prop, dict)
    )


_described: dict[tuple[str, str], tuple[Field, ...]] = {}


def fields_of(entry: CatalogEntry) -> tuple[Field, ...]:
    """The entry's fields, described once per schema: cached on (slug, updated_at), so an edited
    entry is described afresh (an unsaved entry, which has no updated_at, every time)."""
    key = (entry.slug, str(entry.updated_at))
    fields = _described.get(key) if entry.pk else None
    if fields is None:
        if len(_described) > 512:
            _described.clear()
        fields = describe(entry.input_schema, entry.roles)
        if entry.pk:
            _described[key] = fields
    return fields
