"""Issue 13, "Done when": a property-based run (hypothesis) of `POST /api/v1/tasks`,
`GET /api/v1/tasks?cursor=` and the estimate with arbitrary Unicode (lone surrogates and control
characters included), deep nesting and extreme numbers: never a 500, and never a stored row that
breaks a page. After each example that made a task, every page showing it is fetched.

Bounded (~150 examples a test, no deadline, no example database) to stay well under a minute.
Tasks are queued, not run: the pages must stand whatever the row holds, and the rows here are
what a submit stores."""

import base64
import json
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playground.catalog.text import repair_text, text_problem
from playground.generations.models import Task

from ..helpers import SEED

EXAMPLES = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)

# Every code point: lone surrogates, NUL and the other control characters included.
ANY_CHARACTER = st.characters(exclude_categories=())
ANY_TEXT = st.text(ANY_CHARACTER, max_size=24)
# What a URL query can carry: an HTTP request has no lone surrogates (Django decodes bytes to U+FFFD).
QUERY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=24)
EXTREME_NUMBERS = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 4, 5, -1, -5, 2**31, 2**63, 4294967295, 1e308, -0.0, 0.5]),
)
SCALARS = st.one_of(st.none(), st.booleans(), EXTREME_NUMBERS, ANY_TEXT)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=10,
)
TINY_PNG = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
URLS = st.sampled_from(["https://images.test/a.png", TINY_PNG, "https://images.test/\x00.png", "ftp://x"])


# Text a submit accepts, of any script and shape: combining marks, right-to-left, emoji,
# noncharacters, private use, U+2028, a byte-order mark, tabs and line breaks. Stored, it must show.
GOOD_TEXT = st.text(
    st.characters(exclude_categories=["Cs", "Cc"]) | st.sampled_from("\t\n"), min_size=1, max_size=40
)


def mostly(good, *odd):
    """Usually `good` (so that many examples make a task whose pages are then fetched), else
    `odd`, any text or any JSON at all."""
    return usually(good, st.one_of(*odd, ANY_TEXT, ANY_JSON))


def usually(good, other, *, in_every: int = 4):
    """`good`, but one time in `in_every` `other`. (`st.one_of` would draw each branch equally.)"""
    return st.integers(1, in_every).flatmap(lambda draw: other if draw == 1 else good)


SEED_FIELDS = {
    "size": mostly(st.sampled_from(["1:1", "16:9", "auto"])),
    "resolution": mostly(st.sampled_from(["1K", "2k", "4K"])),
    "n": mostly(st.integers(1, 4), st.integers(-10, 10), EXTREME_NUMBERS),
    "image_urls": mostly(
        st.lists(st.sampled_from(["https://images.test/a.png", TINY_PNG]), min_size=1, max_size=2),
        st.lists(URLS | ANY_TEXT, max_size=3),
    ),
    "mask_url": mostly(st.just(TINY_PNG), URLS),
}
INPUTS = usually(
    st.fixed_dictionaries(
        {"prompt": mostly(GOOD_TEXT, st.integers(9_995, 10_005).map(lambda n: "p" * n))}, optional=SEED_FIELDS
    ),
    st.dictionaries(ANY_TEXT, ANY_JSON, max_size=3) | ANY_JSON,
)
MODELS = mostly(st.just(SEED), st.sampled_from(["gpt-image-2", "kling-v3", "nope"]))
BODIES = st.fixed_dictionaries(
    {"model": MODELS, "input": INPUTS},
    optional={"webhook_url": mostly(st.sampled_from(["https://hooks.test/in", ""]))},
)


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


# A body as text: valid JSON of the above (escapes such as "\ud800" written by json.dumps), JSON
# with arrays nested up to far past any limit in a field, or bytes that are not JSON at all.
RAW_BODIES = usually(
    BODIES.map(json.dumps),
    st.one_of(
        st.tuples(BODIES, st.integers(1, 20_000)).map(
            lambda pair: json.dumps({**pair[0], "input": {"prompt": "p", "n": "DEEP"}}).replace(
                '"DEEP"', deep(pair[1])
            )
        ),
        st.binary(max_size=64),
    ),
)


@pytest.fixture
def everything_allowed(settings, fake_dns, outbound_connections, queue_only):
    """No rate limit in the way of a few hundred requests; hosted URLs resolve to a public address
    (nothing is fetched: tasks are queued, never run); no connection leaves 127.0.0.1."""
    settings.PLAYGROUND_API_RATE_LIMIT = "1000000/60"
    fake_dns["images.test"] = "93.184.216.34"
    fake_dns["hooks.test"] = "93.184.216.34"


def pages_of(task: Task) -> dict[str, str]:
    return {
        "history": reverse("history"),
        "task page": reverse("task", args=[task.pk]),
        "re-run": reverse("play", args=[task.model.slug]) + f"?from={task.pk}",
        "compare": reverse("compare") + f"?ids={task.pk}&ids={task.pk}",
        "usage": reverse("usage"),
        "usage CSV": reverse("usage-csv"),
    }


@EXAMPLES
@given(body=RAW_BODIES)
def test_no_task_body_answers_500_and_no_stored_task_breaks_a_page(
    body, api, client, user, everything_allowed
):
    raw = body if isinstance(body, bytes) else body.encode()
    response = api.client.post(
        "/api/v1/tasks", data=raw, content_type="application/json", headers=api.headers({})
    )  # a 500 raises here, with its traceback
    assert response.status_code in (200, 201, 400, 402, 413, 422), response.content[:300]
    if response.status_code != 201:
        assert "error" in response.json()
        return
    task = Task.objects.select_related("model").get(pk=response.json()["task_id"])
    client.force_login(user)
    for name, url in pages_of(task).items():
        page = client.get(url)
        assert page.status_code == 200, name
        page.content.decode("utf-8")
    assert api.get(f"/api/v1/tasks/{task.pk}").status_code == 200
    assert text_problem(json.dumps(task.input, ensure_ascii=False)) is None  # what is stored is text


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8", "surrogatepass")).decode().rstrip("=")


TIMES = st.datetimes(
    min_value=datetime(1, 1, 1),
    max_value=datetime(9999, 12, 31, 23, 59, 59, 999999),
    timezones=st.timezones(),
)
CURSORS = st.one_of(
    QUERY_TEXT,
    ANY_TEXT.map(b64),
    st.integers(min_value=-(10**40), max_value=10**40)
    .map(str)
    .flatmap(lambda n: st.sampled_from([n, b64(n)])),
    st.tuples(TIMES, ANY_TEXT).map(lambda pair: b64(f"{pair[0].isoformat()}|{pair[1]}")),
    # The calendar's edges, in zones that push them past it once moved to UTC.
    st.tuples(
        st.sampled_from(["9999-12-31T23:59:59.999999", "0001-01-01T00:00:00", "2026-01-01T00:00:00"]),
        st.sampled_from(["", "Z", "+00:00", "-00:01", "+00:01", "-23:59", "+23:59"]),
        st.sampled_from(["task_x", "", "\x00", "x" * 50]),
    ).map(lambda parts: b64(f"{parts[0]}{parts[1]}|{parts[2]}")),
)


@EXAMPLES
@given(cursor=CURSORS)
def test_any_cursor_is_a_page_or_400(cursor, api, everything_allowed):
    response = api.get("/api/v1/tasks", {"cursor": cursor})
    assert response.status_code in (200, 400), response.content[:300]
    if response.status_code == 400:
        assert response.json()["error"]["code"] in ("invalid_cursor", "invalid_query")


def test_a_cursor_from_the_api_pages_on(api, everything_allowed):
    """The property above would also hold if every cursor were refused."""
    for prompt in ("one", "two"):
        assert api.submit(prompt=prompt).status_code == 201
    first = api.get("/api/v1/tasks", {"limit": 1}).json()
    second = api.get("/api/v1/tasks", {"limit": 1, "cursor": first["next_cursor"]}).json()
    assert [t["task_id"] for t in second["data"]] != [t["task_id"] for t in first["data"]]


ESTIMATE_VALUES = st.one_of(QUERY_TEXT, EXTREME_NUMBERS.map(str), st.integers(-10, 10).map(str))
SHOWN_PRICE = re.compile(r"est\. \$(-?[0-9.]+)")
SEED_MOST = Decimal("0.864")  # 4 images at 4K, the seed model's dearest task


@EXAMPLES
@given(
    n=ESTIMATE_VALUES,
    resolution=st.sampled_from(["1K", "2K", "4K", "4k"]) | ESTIMATE_VALUES,
    extra=st.dictionaries(QUERY_TEXT, QUERY_TEXT, max_size=2),
)
def test_the_estimate_is_a_sane_price_or_none(
    n, resolution, extra, client, user, catalog, everything_allowed
):
    client.force_login(user)
    response = client.get(reverse("estimate", args=[SEED]), {**extra, "n": n, "resolution": resolution})
    assert response.status_code in (200, 400)
    if response.status_code == 400:  # a control character in the URL
        return
    shown = response.content.decode()
    price = SHOWN_PRICE.search(shown)
    if price is None:
        assert "est. —" in shown
    else:
        assert Decimal(0) < Decimal(price.group(1)) <= SEED_MOST, shown


@settings(max_examples=300, deadline=None, database=None)
@given(text=st.text(ANY_CHARACTER, max_size=40))
def test_repaired_text_is_always_acceptable_and_good_text_is_left_alone(text):
    repaired = repair_text(text)
    assert text_problem(repaired) is None
    repaired.encode("utf-8")  # a page can be encoded
    if text_problem(text) is None:
        assert repaired is text


def test_the_cursor_strategy_reaches_both_answers(api, everything_allowed):
    """A sanity check of the run above: today's cursor is a page, the calendar's edge is not."""
    now = datetime.now(UTC)
    assert api.get("/api/v1/tasks", {"cursor": b64(f"{now.isoformat()}|task_x")}).status_code == 200
    edge = "9999-12-31T23:59:59.999999+00:00"
    assert api.get("/api/v1/tasks", {"cursor": b64(f"{edge}|task_x")}).status_code == 400
