"""Issue 13, "Robust parsing": over-deep JSON is 400 `malformed_json`, a bad cursor of any shape is
400 `invalid_cursor`, odd query parameters never answer 500, and the estimate prices only valid
input ("—" otherwise, never a negative price)."""

import base64
import json
import logging

import pytest
from django.test import Client
from django.urls import reverse

from playground.catalog.text import MAX_JSON_DEPTH
from playground.generations.models import Task

from ..helpers import SEED, seed_input


def nested_body(depth: int) -> str:
    """A task body whose `n` is `depth` arrays deep (the body and `input` are two levels more)."""
    return json.dumps({"model": SEED, "input": {"prompt": "x", "n": "DEEP"}}).replace(
        '"DEEP"', "[" * depth + "]" * depth
    )


def post_raw(key: str, body: str):
    """A POST from a client that sees what a 500 looks like (no exception raised into the test)."""
    browser = Client(raise_request_exception=False)
    return browser.post(
        "/api/v1/tasks",
        data=body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )


# --- Deep nesting ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [1000, 10_000, 100_000])
def test_a_deeply_nested_body_is_a_client_error_not_a_500(key, catalog, depth, caplog):
    """From the attack review (round 2), and the issue's finding: `[[[[…]]]]` deep inside `input`
    raised RecursionError in json.loads or in the walks after it, answered 500 with a
    thousand-frame traceback in the log. A body the server will not take apart is the client's
    error, and nothing is logged as a server error."""
    body = nested_body(depth)
    with caplog.at_level(logging.WARNING):
        response = post_raw(key, body)
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["code"] == "malformed_json"
    assert "nested" in response.json()["error"]["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not Task.objects.exists()


def test_nesting_up_to_the_limit_is_read_and_judged_by_the_schema(key, catalog):
    response = post_raw(key, nested_body(MAX_JSON_DEPTH - 2))
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "input.n"
    assert post_raw(key, nested_body(MAX_JSON_DEPTH - 1)).json()["error"]["code"] == "malformed_json"


def test_a_deep_body_with_a_large_data_uri_in_it_is_refused_the_same_way(key, catalog):
    """The parse that leaves data URIs in the body uncopied walks the result too."""
    data_uri = "data:image/png;base64," + "A" * 8192
    body = json.dumps({"model": SEED, "input": {"prompt": "x", "image_urls": [data_uri], "n": "DEEP"}})
    response = post_raw(key, body.replace('"DEEP"', "[" * 5000 + "]" * 5000))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"


# --- Cursors ------------------------------------------------------------------------------------------


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


BAD_CURSORS = [
    "garbage",
    "%%%",
    "é",
    "A" * 5,
    "9" * 400,
    b64("garbage"),
    b64("\x00\x01\x02|"),
    b64("9" * 400 + "|1"),
    b64("9999-12-31T23:59:59.999999+00:00|task_x"),  # the calendar's last moment
    b64("9999-12-31T23:59:59.999999-01:00|task_x"),  # past it once moved to UTC: overflowed (500)
    b64("0001-01-01T00:00:00+14:00|task_x"),  # before it once moved to UTC: overflowed (500)
    b64("0001-01-01T00:00:00+00:00|task_x"),
    b64("2026-01-01T00:00:00|task_x"),  # no zone: not one of ours
    b64("2026-01-01T00:00:00+00:00|task\x00x"),
    b64("2026-01-01T00:00:00+00:00|" + "x" * 1000),
    b64("2026-01-01T00:00:00+00:00"),
]


@pytest.mark.parametrize("cursor", BAD_CURSORS)
def test_a_bad_cursor_of_any_shape_is_400_invalid_cursor(api, cursor):
    response = api.get("/api/v1/tasks", {"cursor": cursor})
    assert response.status_code == 400, response.content
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == (
        "invalid_cursor",
        "cursor",
    )


def test_the_cursors_the_api_returns_still_page_through_every_task(api):
    made = [api.submit(prompt=f"task {i}").json()["task_id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        page = api.get("/api/v1/tasks", {"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [task["task_id"] for task in page["data"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == made[::-1]


# --- Other query parameters -----------------------------------------------------------------------------


ODD = ["-1", "0", "9" * 100, "nan", "1e400", "%", "_", "' OR 1=1 --", "é" * 300, "x" * 5000, "\t", "a\nb"]


@pytest.mark.parametrize("value", ODD)
def test_odd_filters_and_page_numbers_never_fail_a_page(value, make_task, user, catalog, client, api):
    make_task(user, catalog)
    client.force_login(user)
    for name in ("page", "q", "model", "status"):
        assert client.get(reverse("history"), {name: value}).status_code == 200, name
    assert client.get(reverse("compare"), {"ids": [value, value]}).status_code == 200
    for url in (reverse("usage"), reverse("usage-csv")):
        assert client.get(url, {"days": value, "start": value, "end": value}).status_code == 200
    for name in ("model", "status", "limit", "kind"):
        assert api.get("/api/v1/tasks", {name: value}).status_code in (200, 422), name
    assert api.get("/api/v1/models", {"kind": value}).status_code in (200, 422)


@pytest.mark.parametrize(
    "url", ["/history?q=a%00b", "/history?model=%01", "/tasks/task_%00x", "/usage?x%00=1"]
)
def test_a_url_holding_a_control_character_is_a_400_page(url, user):
    """PostgreSQL cannot compare text holding a NUL: such a filter or id would be a 500 there."""
    browser = Client(raise_request_exception=False)
    browser.force_login(user)
    response = browser.get(url)
    assert response.status_code == 400
    assert "could not be read" in response.content.decode()


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/tasks?model=a%00b", "model"),
        ("/api/v1/tasks/task_%00x", "path"),
        ("/api/v1/models?kind=%1b", "kind"),
    ],
)
def test_an_api_url_holding_a_control_character_is_400_naming_it(url, field, api):
    response = api.get(url)
    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == ("invalid_query", field)


# --- The estimate ---------------------------------------------------------------------------------------


@pytest.fixture
def signed_in(client, user, catalog):
    client.force_login(user)
    return client


def estimate(client, **params) -> str:
    response = client.get(reverse("estimate", args=[SEED]), params)
    assert response.status_code == 200
    return response.content.decode()


def test_the_findings_estimate_for_n_minus_5_is_no_price_not_minus_0_603(signed_in):
    shown = estimate(signed_in, n="-5", resolution="1K")
    assert "$-" not in shown and "0.603" not in shown
    assert "est. —" in shown


@pytest.mark.parametrize("n", ["-5", "0", "5", "99999999999999999999", "1e400", "nan", "-0", "2.5", "", "x"])
def test_the_estimate_prices_only_what_a_submit_would_accept(signed_in, api, n):
    shown = estimate(signed_in, n=n, resolution="1K")
    accepted = api.submit(n=n).status_code == 201 if n else True
    assert ("est. —" not in shown) == accepted or n == "", (n, shown)
    assert "$-" not in shown


def test_a_price_below_zero_is_no_price_even_where_the_schema_allows_the_count(signed_in, api, catalog):
    """A catalog entry whose count has no minimum: n=-5 passes its schema, and still has no price
    (the button says "—", a submit is refused), instead of a task that pays its owner."""
    entry = catalog[SEED]
    del entry.input_schema["properties"]["n"]["minimum"]
    entry.save()
    assert "est. —" in estimate(signed_in, n="-5", resolution="1K")
    response = api.submit(n=-5)
    assert response.status_code == 422
    assert response.json()["error"]["errors"][0]["code"] == "no_price"
    assert not Task.objects.exists()


def test_an_absurd_price_is_no_price_either(api, catalog):
    entry = catalog[SEED]
    del entry.input_schema["properties"]["n"]["maximum"]
    entry.save()
    response = api.post("/api/v1/tasks", {"model": SEED, "input": seed_input(n=10**12)})
    assert response.status_code == 422
    assert not Task.objects.exists()
