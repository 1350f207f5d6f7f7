"""Reading catalog entry files and writing them to the database.

An entry file has the `shared/catalog` format (slug, title, kind, output_key, input_schema,
example_input, example_cost_estimate, provenance) plus optional `roles`, `pricing` and `engine`.
"""

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
from django.db import transaction

from playground.engines import ENGINES

from .models import CatalogEntry
from .text import text_problem

ENTRIES_DIR = Path(__file__).resolve().parent / "entries"
ROLE_NAMES = {
    "prompt": ["prompt"],
    "count": ["n", "sample_count", "num_images"],
    "aspect": ["size", "aspect_ratio"],
    "resolution": ["resolution"],
    "duration": ["duration"],
    "reference_images": ["image_urls", "image_url", "image_with_roles"],
    "reference_video": ["video_urls", "video_url"],
    "reference_audio": ["audio_urls", "audio_url"],
    "mask": ["mask_url"],
    "seed": ["seed"],
}
PRICING_UNITS = ("image", "second", "task")
SLUG = re.compile(r"[-a-zA-Z0-9_]{1,100}")  # what the `slug` URL converter matches


class CatalogError(ValueError):
    """An entry file that cannot be imported; the message names the offending key."""


def infer_roles(schema: dict) -> dict[str, str]:
    """Map each role to the first conventional field name the schema has."""
    properties = schema.get("properties", {})
    roles = {}
    for role, names in ROLE_NAMES.items():
        for name in names:
            if name in properties:
                roles[role] = name
                break
    return roles


def default_pricing(data: dict) -> dict:
    """Derive a unit price from the example cost when the file carries no pricing rule."""
    example_cost = data.get("example_cost_estimate")
    if example_cost is None:
        return {"unit": "task", "unit_price": 0}
    probe = {**data, "pricing": {"unit": _unit_for(data["kind"]), "unit_price": 1}}
    quantity = _estimate(probe, data.get("example_input") or {})
    unit_price = Decimal(str(example_cost)) / quantity if quantity else Decimal(0)
    return {
        "unit": _unit_for(data["kind"]),
        "unit_price": float(round(unit_price, 6)),
        "source": "Derived from example_cost_estimate and example_input.",
    }


def _unit_for(kind: str) -> str:
    return "second" if kind == "video" else "image"


def _estimate(data: dict, example_input: dict) -> Decimal:
    from .pricing import estimate_from_rule

    return estimate_from_rule(
        data["pricing"],
        data.get("roles") or infer_roles(data["input_schema"]),
        data["input_schema"],
        example_input,
    )


def validate_entry(data: Any) -> dict:
    """Check an entry's shape and its schema; return it completed with roles, pricing and engine."""
    if not isinstance(data, dict):
        raise CatalogError("the file must hold a JSON object")
    for key in ("slug", "title", "kind", "output_key", "input_schema"):
        if key not in data:
            raise CatalogError(f"`{key}` is missing")
    if not isinstance(data["slug"], str) or not SLUG.fullmatch(data["slug"]):
        raise CatalogError("`slug` must be 1 to 100 letters, digits, `-` or `_` (it is part of URLs)")
    if not isinstance(data["title"], str) or text_problem(data["title"]):
        raise CatalogError("`title` must be text without control characters")
    if data["kind"] not in CatalogEntry.Kind.values:
        raise CatalogError("`kind` must be image or video")
    schema = data["input_schema"]
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise CatalogError("`input_schema` must be a JSON Schema of type object")
    validator_class = jsonschema.validators.validator_for(schema, jsonschema.Draft202012Validator)
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise CatalogError(f"`input_schema` is not valid JSON Schema at {where}: {exc.message}") from exc
    engine = data.get("engine", "")
    if engine and engine not in ENGINES:
        raise CatalogError(f"`engine` must be one of {', '.join(ENGINES)}")
    roles = data.get("roles") or infer_roles(schema)
    unknown = [field for field in roles.values() if field not in schema.get("properties", {})]
    if unknown:
        raise CatalogError(f"`roles` names fields the schema lacks: {', '.join(unknown)}")
    entry = {**data, "roles": roles, "engine": engine}
    pricing = data.get("pricing") or default_pricing(entry)
    if pricing.get("unit") not in PRICING_UNITS or "unit_price" not in pricing:
        raise CatalogError("`pricing` needs a `unit` (image, second or task) and a `unit_price`")
    entry["pricing"] = pricing
    example = data.get("example_input")
    if example:
        errors = sorted(validator_class(schema).iter_errors(example), key=str)
        if errors:
            raise CatalogError(f"`example_input` does not match the schema: {errors[0].message}")
    return entry


def import_entry(data: Any) -> tuple[CatalogEntry, bool]:
    """Add or update one entry from its parsed file; return it and whether it was created."""
    entry = validate_entry(data)
    cost = entry.get("example_cost_estimate")
    return CatalogEntry.objects.update_or_create(
        slug=entry["slug"],
        defaults={
            "title": entry["title"],
            "kind": entry["kind"],
            "output_key": entry["output_key"],
            "input_schema": entry["input_schema"],
            "roles": entry["roles"],
            "pricing": entry["pricing"],
            "engine": entry["engine"],
            "example_input": entry.get("example_input") or {},
            "example_cost_estimate": Decimal(str(cost)) if cost is not None else None,
            "provenance": entry.get("provenance", ""),
            "is_active": True,
        },
    )


def read_entry_file(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CatalogError(f"{path}: no such file") from exc
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc


def load_builtin_catalog() -> list[CatalogEntry]:
    """Import every entry shipped in the repo (idempotent)."""
    with transaction.atomic():
        return [import_entry(read_entry_file(path))[0] for path in sorted(ENTRIES_DIR.glob("*.json"))]
