"""Hardening a user would notice: the CSP and security headers, rate limits, size limits."""

import base64
import re

import pytest
from django.urls import reverse

from playground.generations.models import Task
from playground.generations.sharing import share_task
from playground.keys.services import issue_key

from .helpers import SEED, Api


def csp(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


@pytest.fixture
def pages(client, user, catalog, make_task):
    task = make_task(user, catalog)
    shared = share_task(task).share
    client.force_login(user)
    return [
        reverse("play", args=[SEED]),
        reverse("task", args=[task.pk]),
        reverse("history"),
        reverse("keys"),
        reverse("usage"),
        reverse("play", args=["wan2-7-r2v"]),
        reverse("share", args=[shared.token]),  # the one public page
    ]


def test_every_page_has_a_strict_content_security_policy(client, pages):
    for url in pages:
        policy = csp(client.get(url))
        assert policy["script-src"] == ["'self'"], url
        assert policy["style-src"] == ["'self'"], url
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]


def test_no_page_needs_inline_script_style_or_handlers(client, pages):
    for url in pages:
        html = client.get(url).content.decode()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), url
        assert not re.search(r"\sstyle=", html), url
        assert not re.search(r"\son[a-z]+=", html), url


def test_htmx_is_configured_for_the_policy(client, pages):
    html = client.get(pages[0]).content.decode()
    assert '"includeIndicatorStyles": false' in html and '"allowEval": false' in html


def test_security_headers_are_sent(client, db):
    response = client.get(reverse("login"))
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def test_an_api_key_over_its_rate_limit_gets_429_with_retry_after(api, other_api, settings):
    settings.PLAYGROUND_API_RATE_LIMIT = "3/60"
    for _ in range(3):
        assert api.get("/api/v1/models").status_code == 200
    limited = api.get("/api/v1/models")
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 61
    assert other_api.get("/api/v1/models").status_code == 200  # per key


def test_a_rate_limited_submit_creates_nothing(api, settings):
    settings.PLAYGROUND_API_RATE_LIMIT = "1/60"
    assert api.submit().status_code == 201
    assert api.submit(prompt="again").status_code == 429
    assert Task.objects.count() == 1


def test_sign_in_is_rate_limited_per_address(client, user, settings):
    settings.PLAYGROUND_SIGNIN_RATE_LIMIT = "2/60"
    for _ in range(2):
        client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    limited = client.post(reverse("login"), {"username": "alice", "password": "alice-password-1"})
    assert limited.status_code == 429 and "Retry-After" in limited


def test_a_data_uri_over_the_limit_is_413_naming_the_field(api, settings):
    settings.PLAYGROUND_MAX_INPUT_IMAGE_BYTES = 1000
    big = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + b"0" * 5000).decode()
    response = api.submit(image_urls=["https://example.com/ok.png", big])
    assert response.status_code == 413
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("payload_too_large", "input.image_urls[1]")
    assert not Task.objects.exists()


def test_a_malformed_rate_limit_setting_is_a_clear_configuration_error(api, settings):
    from django.core.exceptions import ImproperlyConfigured

    from playground.access.ratelimit import Limit

    with pytest.raises(ImproperlyConfigured, match="600/60"):
        Limit.parse("lots")


def test_keys_still_work_without_a_limit(client, user, catalog, settings, django_capture_on_commit_callbacks):
    settings.PLAYGROUND_API_RATE_LIMIT = "0/60"
    api = Api(client, issue_key(user).secret, django_capture_on_commit_callbacks)
    assert all(api.get("/api/v1/models").status_code == 200 for _ in range(5))


def test_a_long_windows_count_lasts_to_its_end_in_the_database(db):
    """A window of 115 days counts until it ends (a cache's default expiry must not cut it
    short), and the next window starts again from nothing."""
    import time

    from playground.access.models import RateCounter
    from playground.access.ratelimit import Limit, over_limit

    limit = Limit.parse("3/10000000")
    now = time.time()
    ends = (now // limit.seconds + 1) * limit.seconds
    for _ in range(3):
        assert over_limit("long", limit, now=now) is None
    assert RateCounter.objects.get(scope="long").ends_at.timestamp() == ends
    assert over_limit("long", limit, now=ends - 1) is not None  # a day before its end: still full
    assert over_limit("long", limit, now=ends + 1) is None  # the next window


def test_a_busy_key_is_counted_one_lease_at_a_time_and_never_past_its_limit(db, settings):
    """A process counts a large limit's hits in the shared count a lease at a time (12 hits for
    600 a minute): 24 hits are two counting steps, not 24. Hits another process leased and has not
    spent are counted already, so all processes together never pass the limit; what one process
    leaves unspent is lost to the others (here 11 of 600)."""
    from playground.access.models import RateCounter
    from playground.access.ratelimit import Limit, forget_leases, lease_size, over_limit

    limit, now = Limit.parse("600/60"), 1_800_000_000.0
    assert lease_size(limit) == 12
    assert all(over_limit("busy", limit, now=now) is None for _ in range(24))
    assert RateCounter.objects.get(scope="busy").hits == 24  # two leases of 12
    assert over_limit("busy", limit, now=now) is None  # the third lease: 36 counted, 11 unspent here
    forget_leases()  # from here on, another process: what the first leased is counted, not its own
    passed = 0
    while over_limit("busy", limit, now=now) is None:
        passed += 1
    assert passed == 600 - 36  # 25 were spent and 11 are stranded in the first process
    assert over_limit("busy", limit, now=now + 60) is None  # the next window starts from nothing
