"""The API reference page (`/docs/api`): the OpenAPI document of `/api/v1` and the catalog,
rendered for people on the server, with runnable snippets for every model.

It needs an account: the catalog it lists (input schemas, examples) is otherwise only served to key
holders (`GET /api/v1/models`), and the snippets need a key, which only an account can issue. The
machine-readable contract stays public at `/api/v1/openapi.json`.
"""

import json
import re
from dataclasses import dataclass, field

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET

from playground.catalog.models import CatalogEntry
from playground.generations.openapi import openapi_document
from playground.generations.outputs import public_base
from playground.keys.webhook_secrets import grace_period

from .snippets import api_snippets

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class SchemaField:
    """One property of a JSON Schema, flattened: nested ones are named by path (`error.code`,
    `image_with_roles[].url`). `type` reads like "string or null" or "array of " followed by the
    component named in `ref`."""

    name: str
    type: str
    ref: str = ""
    required: bool = False
    enum: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    description: SafeString = field(default_factory=SafeString)


@dataclass(frozen=True)
class Response:
    status: str
    description: SafeString
    ref: str = ""
    headers: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    anchor: str
    summary: str
    description: SafeString
    parameters: list[SchemaField]
    body_ref: str
    body_fields: list[SchemaField]
    responses: list[Response]


def inline_code(text: str) -> SafeString:
    """Plain text whose `backticked` parts (as the OpenAPI descriptions write code) become <code>."""
    html = SafeString()
    for index, part in enumerate(re.split(r"`([^`]+)`", text)):
        html += format_html("<code>{}</code>", part) if index % 2 else escape(part)
    return html


def ref_name(schema: dict) -> str:
    return schema.get("$ref", "").rsplit("/", 1)[-1]


def type_text(schema: dict) -> tuple[str, str]:
    """("array of ", "Task"), ("string or null", ""): the type in words and the component it names."""
    if "$ref" in schema:
        return "", ref_name(schema)
    types = schema.get("type") or ("string" if "enum" in schema else "any")
    types = types if isinstance(types, list) else [types]
    items = schema.get("items") if isinstance(schema.get("items"), dict) else None
    if "array" in types and items is not None:
        words, ref = type_text(items)
        others = [t for t in types if t != "array"]
        return " or ".join([*others, f"array of {words}"]), ref
    return " or ".join(types), ""


def amount(number: int, unit: str) -> str:
    """`3 items`, `1 item`, `4` (no unit)."""
    return f"{number} {unit}{'' if number == 1 else 's'}" if unit else str(number)


def schema_notes(schema: dict) -> list[str]:
    """The constraints of one property, in words."""
    notes = []
    if "format" in schema:
        notes.append(schema["format"])
    for low, high, unit in (
        ("minimum", "maximum", ""),
        ("minLength", "maxLength", "character"),
        ("minItems", "maxItems", "item"),
    ):
        if low in schema and high in schema:
            notes.append(f"{schema[low]} to {amount(schema[high], unit)}")
        elif low in schema:
            notes.append(f"at least {amount(schema[low], unit)}")
        elif high in schema:
            notes.append(f"at most {amount(schema[high], unit)}")
    if "default" in schema:
        notes.append(f"default {json.dumps(schema['default'], ensure_ascii=False)}")
    values = schema.get("additionalProperties")
    if isinstance(values, dict):
        words, ref = type_text(values)
        notes.append(f"each value: {words}{ref}")
    return notes


def schema_fields(schema: dict, prefix: str = "") -> list[SchemaField]:
    """Every property of `schema` (an object), nested objects and arrays of objects included;
    `$ref`s are named, not followed."""
    rows = []
    required = set(schema.get("required") or ())
    for name, spec in (schema.get("properties") or {}).items():
        if not isinstance(spec, dict):
            continue
        words, ref = type_text(spec)
        rows.append(
            SchemaField(
                name=f"{prefix}{name}",
                type=words,
                ref=ref,
                required=name in required,
                enum=[str(value) for value in spec.get("enum", [])],
                notes=schema_notes(spec),
                description=inline_code(spec.get("description", "")),
            )
        )
        items = spec.get("items") if isinstance(spec.get("items"), dict) else {}
        if spec.get("properties"):
            rows.extend(schema_fields(spec, f"{prefix}{name}."))
        elif items.get("properties"):
            rows.extend(schema_fields(items, f"{prefix}{name}[]."))
    return rows


def parameter_field(parameter: dict) -> SchemaField:
    schema = parameter.get("schema", {})
    words, ref = type_text(schema)
    return SchemaField(
        name=parameter["name"],
        type=words,
        ref=ref,
        required=parameter.get("required", False),
        enum=[str(value) for value in schema.get("enum", [])],
        notes=[f"in {parameter['in']}", *schema_notes(schema)],
        description=inline_code(parameter.get("description", "")),
    )


def operations(document: dict) -> list[Operation]:
    schemas = document["components"]["schemas"]
    found = []
    for path, item in document["paths"].items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            body_ref = ref_name(body.get("schema", {}))
            body_schema = schemas.get(body_ref, body.get("schema", {}))
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    anchor=operation.get("operationId", f"{method}-{path}"),
                    summary=operation.get("summary", ""),
                    description=inline_code(operation.get("description", "")),
                    parameters=[parameter_field(p) for p in operation.get("parameters", [])],
                    body_ref=body_ref,
                    body_fields=schema_fields(body_schema) if body else [],
                    responses=[
                        Response(
                            status=status,
                            description=inline_code(response.get("description", "")),
                            ref=ref_name(
                                response.get("content", {}).get("application/json", {}).get("schema", {})
                            ),
                            headers=list(response.get("headers", {})),
                        )
                        for status, response in sorted(operation.get("responses", {}).items())
                    ],
                )
            )
    return found


def status_table(document: dict) -> list[tuple[str, list[str]]]:
    """Every status code other than success the API answers with, and what it means wherever it is
    used (each operation lists its own successes)."""
    meanings: dict[str, list[str]] = {}
    for item in document["paths"].values():
        for method in HTTP_METHODS:
            for status, response in item.get(method, {}).get("responses", {}).items():
                if status.startswith("2"):
                    continue
                said = meanings.setdefault(status, [])
                if response.get("description") and response["description"] not in said:
                    said.append(response["description"])
    return sorted(meanings.items())


@login_required
@require_GET
def api_reference(request: HttpRequest) -> HttpResponse:
    document = openapi_document(request)
    base_url = public_base(request)
    entries = CatalogEntry.objects.filter(is_active=True).order_by("kind", "title")
    models = [
        {
            "entry": entry,
            "fields": schema_fields(entry.input_schema),
            "closed": entry.input_schema.get("additionalProperties") is False,
            "snippets": api_snippets(base_url, entry.slug, entry.example_input),
        }
        for entry in entries
    ]
    return render(
        request,
        "web/api_reference.html",
        {
            "nav": "api",
            "document": document,
            "base_url": base_url,
            "operations": operations(document),
            "statuses": status_table(document),
            "error_fields": schema_fields(document["components"]["schemas"]["Error"]),
            "schemas": [
                (name, schema_fields(schema)) for name, schema in document["components"]["schemas"].items()
            ],
            "models": models,
            "webhook_grace": grace_period(),
        },
    )
