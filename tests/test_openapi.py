"""The OpenAPI document is a valid OpenAPI 3.1 document, and the checker every API test uses holds
the API to it."""

import json
from decimal import Decimal

import jsonschema
import pytest
from django.http import JsonResponse
from django.urls import get_resolver
from openapi_spec_validator import OpenAPIV31SpecValidator

from playground.keys.services import issue_key

from .helpers import DOCUMENT, Api, assert_matches_openapi, data_uri, solid_png


def references(node):
    """Every `$ref` in a JSON document."""
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def resolve(document, reference):
    node = document
    for part in reference.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def tampered(response, change):
    """A copy of a real API response whose JSON body `change` edited."""
    body = response.json()
    change(body)
    copy = JsonResponse(body, status=response.status_code)
    copy.json = lambda: json.loads(copy.content)
    return copy


def test_it_serves_a_valid_openapi_3_1_document(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    assert document["servers"] == [{"url": "http://testserver"}]
    # The OpenAPI 3.1 meta-schema, and every schema object against the 3.1 dialect.
    errors = [error.message for error in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []
    for reference in set(references(document)):
        assert reference.startswith("#/"), reference
        try:
            resolve(document, reference)
        except (KeyError, TypeError):
            pytest.fail(f"{reference} points nowhere in the document")


def test_every_api_route_is_documented(client):
    paths = set(client.get("/api/v1/openapi.json").json()["paths"])
    routes = {
        "/api/v1/" + str(p.pattern).replace("<str:", "{").replace(">", "}")
        for p in get_resolver().url_patterns[1].url_patterns
        if str(p.pattern) != "openapi.json"
    }
    assert routes == paths


@pytest.mark.parametrize(
    "change",
    [
        lambda body: body.pop("task_id"),
        lambda body: body.update(status="done"),
        lambda body: body.update(cost_estimate="0.12"),
        lambda body: body.update(output=[]),
    ],
    ids=["without task_id", "with an unknown status", "with a cost as text", "with output as a list"],
)
def test_the_api_checker_catches_a_tampered_task(api, queue_only, change):
    task_id = api.submit().json()["task_id"]
    path = f"/api/v1/tasks/{task_id}"
    real = api.get(path)  # checked against the document on the way in
    assert real.status_code == 200 and real.json()["task_id"] == task_id
    assert_matches_openapi("GET", path, tampered(real, lambda body: None))  # an untouched copy passes
    with pytest.raises(jsonschema.ValidationError):
        assert_matches_openapi("GET", path, tampered(real, change))


def test_the_api_checker_catches_an_undocumented_status(api, queue_only):
    task_id = api.submit().json()["task_id"]
    real = api.get(f"/api/v1/tasks/{task_id}")
    real.status_code = 418
    with pytest.raises(AssertionError, match="418, not documented"):
        assert_matches_openapi("GET", f"/api/v1/tasks/{task_id}", real)


def test_every_documented_answer_to_creating_a_task_is_one_it_gives(
    api, client, user, settings, queue_only, bucket_down, django_capture_on_commit_callbacks
):
    # Each answer goes through Api, which checks it against the document.
    answers = [
        api.submit(headers={"Idempotency-Key": "once"}),  # 201
        api.submit(headers={"Idempotency-Key": "once"}),  # 200: the replay
        api.submit(prompt="other", headers={"Idempotency-Key": "once"}),  # 409
        api.post("/api/v1/tasks", raw="{not json"),  # 400
        api.post("/api/v1/tasks", {"model": "nope", "input": {}}),  # 422
        Api(client, "pg_live_" + "x" * 38, django_capture_on_commit_callbacks).submit(),  # 401
        Api(
            client, issue_key(user, budget=Decimal("0.01")).secret, django_capture_on_commit_callbacks
        ).submit(),
        Api(  # 403: a model the key may not use
            client, issue_key(user, allowed_models=["gpt-image-2"]).secret, django_capture_on_commit_callbacks
        ).submit(),
    ]
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    answers.append(api.submit(prompt="x" * 20_000))  # 413
    client.raise_request_exception = False
    answers.append(api.submit(image_urls=[data_uri(solid_png())]))  # 503: the bucket does not answer
    settings.PLAYGROUND_API_RATE_LIMIT = "1/60"
    answers.append(api.submit(prompt="one too many"))  # 429
    given = [str(answer.status_code) for answer in answers]
    assert given == ["201", "200", "409", "400", "422", "401", "402", "403", "413", "503", "429"]
    assert set(DOCUMENT["paths"]["/api/v1/tasks"]["post"]["responses"]) == set(given)
