"""The API reference page (/docs/api): the OpenAPI document and the catalog, rendered for people."""

import re

import pytest
from django.urls import reverse
from django.utils.html import escape

from playground.catalog.models import CatalogEntry
from playground.generations.openapi import openapi_document
from playground.web.api_reference import schema_fields
from playground.web.snippets import api_snippets

from .helpers import SEED

PAGE = reverse("api-reference")


@pytest.fixture
def signed_in(client, user, catalog):
    client.force_login(user)
    return client


def test_it_lists_every_operation_of_the_openapi_document(signed_in):
    html = signed_in.get(PAGE).content.decode()
    document = openapi_document()
    operations = [(m.upper(), path) for path, item in document["paths"].items() for m in item]
    assert len(operations) >= 7  # the MindVideo calls and more
    for method, path in operations:
        assert re.search(rf'{method}</span> <code class="path">{re.escape(path)}</code>', html), (
            method,
            path,
        )
        summary = document["paths"][path][method.lower()].get("summary")
        assert summary and escape(summary) in html
    for name in document["components"]["schemas"]:
        assert f'id="schema-{name}"' in html
    assert f'href="{reverse("api-openapi")}"' in html


def test_it_lists_every_active_model_with_its_fields_and_no_other(signed_in, catalog):
    CatalogEntry.objects.filter(slug="kling-v3").update(is_active=False)
    html = signed_in.get(PAGE).content.decode()
    for entry in CatalogEntry.objects.filter(is_active=True):
        assert f'id="model-{entry.slug}"' in html and escape(entry.title) in html
        for name in entry.input_schema["properties"]:
            assert f"<code>{name}</code>" in html
    assert 'id="model-kling-v3"' not in html and "Kling V3" not in html
    assert "<code>image_with_roles[].url</code>" in html  # an array of objects, field by field


def test_its_snippets_for_a_model_are_the_snippets_module_s(signed_in, catalog):
    html = signed_in.get(PAGE).content.decode()
    entry = CatalogEntry.objects.get(slug="wan2-7-r2v")  # as the page reads it (PostgreSQL orders JSON keys)
    snippets = api_snippets("http://testserver", entry.slug, entry.example_input)
    assert set(snippets) == {"curl", "python", "javascript"}
    for language, code in snippets.items():
        assert f'<pre id="snippet-{entry.slug}-{language}"><code>{escape(code)}</code></pre>' in html


def test_it_explains_errors_authentication_idempotency_and_polling(signed_in):
    html = signed_in.get(PAGE).content.decode()
    for section in ("authentication", "idempotency", "polling", "errors"):
        assert f'<section id="{section}">' in html
    assert "<code>error.errors[].field</code>" in html
    for status in ("304", "400", "401", "402", "404", "409", "413", "422", "429"):
        assert f"<tr><td><code>{status}</code></td>" in html
    assert "Too many requests with this key" in html


def test_it_needs_an_account_and_the_nav_links_to_it(client, signed_in, user):
    html = signed_in.get(reverse("history")).content.decode()
    assert f'<a href="{PAGE}">API</a>' in html
    assert f'<a href="{PAGE}" aria-current="page">API</a>' in signed_in.get(PAGE).content.decode()
    signed_in.logout()
    response = client.get(PAGE)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_schema_fields_read_types_requirements_and_constraints(catalog):
    document = openapi_document()
    task = {f.name: f for f in schema_fields(document["components"]["schemas"]["Task"])}
    assert (task["task_id"].type, task["task_id"].required) == ("string", True)
    assert (task["cost_actual"].type, task["cost_actual"].required) == ("number or null", True)
    assert task["output"].notes == ["each value: array of OutputFile"]
    assert task["status"].enum == ["queued", "processing", "succeeded", "failed", "cancelled"]
    assert (task["error.code"].type, task["error.code"].required) == ("string", False)
    listing = {f.name: f for f in schema_fields(document["components"]["schemas"]["TaskList"])}
    assert (listing["data"].type, listing["data"].ref) == ("array of ", "Task")
    seed = {f.name: f for f in schema_fields(catalog[SEED].input_schema)}
    assert seed["n"].notes == ["1 to 4", "default 1"]
    assert seed["image_urls"].notes == ["1 to 14 items"]
    assert seed["prompt"].notes == ["at least 1 character"]
