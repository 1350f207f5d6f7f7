import jsonschema
from jsonschema.validators import Draft202012Validator


def test_the_document_is_served_as_openapi_3_1(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "http://testserver"}]
    for name, schema in document["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema), name


def test_every_api_route_is_documented(client):
    from django.urls import get_resolver

    paths = set(client.get("/api/v1/openapi.json").json()["paths"])
    routes = {
        "/api/v1/" + str(p.pattern).replace("<str:", "{").replace(">", "}")
        for p in get_resolver().url_patterns[1].url_patterns
        if str(p.pattern) != "openapi.json"
    }
    routes = {r.replace("{slug}", "{slug}") for r in routes}
    assert routes == paths


def test_a_response_that_breaks_the_document_is_caught():
    """The checker the API tests use is real: a task without task_id fails it."""
    from .helpers import DOCUMENT

    schema = {"components": DOCUMENT["components"], "$ref": "#/components/schemas/Task"}
    try:
        Draft202012Validator(schema).validate({"status": "queued"})
    except jsonschema.ValidationError:
        return
    raise AssertionError("an invalid task body passed the OpenAPI schema")
