"""The short ways hot requests take: `/api/v1` skips the browser's middleware (ApiPathMiddleware),
and sessions are read with one hand-written statement (`access.sessions`). Both must answer
exactly as the long way did: the same headers, the same errors, the same sign-outs."""

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.test import override_settings
from django.urls import include, path, reverse
from django.utils import timezone

from playground.api.middleware import api_chain
from playground.urls import handler400, handler403, handler404, handler500  # noqa: F401

from .helpers import SEED

CSP = "Content-Security-Policy"


def test_an_api_answer_has_the_same_security_headers_as_a_page(api, client, db):
    page = client.get(reverse("login"))
    for answer in (api.get("/api/v1/models"), api.get("/api/v1/tasks/nope"), client.get("/api/v1/models")):
        for header in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", CSP):
            assert answer[header] == page[header], header
        assert answer["X-Request-Id"].startswith("req_")


def test_an_api_request_with_a_browser_session_sets_no_cookie_and_still_needs_a_key(client, user, catalog):
    """The session is not the API's: a signed-in browser calling the API without a key is 401,
    and the answer neither touches the session (no Set-Cookie, no Vary: Cookie) nor sets a CSRF
    cookie."""
    client.force_login(user)
    answer = client.get("/api/v1/tasks")
    assert answer.status_code == 401
    assert not answer.cookies
    assert "Cookie" not in answer.get("Vary", "")
    assert client.get(reverse("play", args=[SEED])).status_code == 200  # the session still works


def test_the_api_path_refuses_middleware_whose_hooks_it_would_not_run():
    with pytest.raises(ImproperlyConfigured, match="process_view"):
        api_chain(["django.middleware.csrf.CsrfViewMiddleware"])


def broken(request):
    raise RuntimeError("boom")


def no_response(request):
    return None


def plain(request):
    return HttpResponse("ok")


urlpatterns = [
    path("api/v1/broken", broken),
    path("api/v1/no-response", no_response),
    path("api/v1/plain", plain),
    path("", include("playground.urls")),
]


@override_settings(ROOT_URLCONF=__name__, DEBUG_PROPAGATE_EXCEPTIONS=False)
@pytest.mark.parametrize("url", ["/api/v1/broken", "/api/v1/no-response"])
def test_a_view_that_fails_on_the_api_path_is_the_json_500_with_every_header(client, db, url):
    client.raise_request_exception = False
    answer = client.get(url)
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "server_error"
    assert answer.json()["error"]["request_id"] == answer["X-Request-Id"]
    assert answer["X-Frame-Options"] == "DENY" and CSP in answer


@override_settings(ROOT_URLCONF=__name__, APPEND_SLASH=True)
def test_the_api_path_still_runs_common_middleware_and_the_body_limit(client, db, settings):
    settings.PLAYGROUND_MAX_BODY_BYTES = 10
    assert client.get("/api/v1/plain").content == b"ok"
    refused = client.post("/api/v1/plain", data=b"x" * 11, content_type="application/octet-stream")
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "body_too_large"


def test_an_expired_session_is_signed_out(client, user, catalog):
    client.force_login(user)
    assert client.get(reverse("history")).status_code == 200
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    answer = client.get(reverse("history"))
    assert answer.status_code == 302 and answer["Location"].startswith(reverse("login"))


def test_an_unknown_session_cookie_is_nobody_and_gets_a_new_session(client, user, catalog):
    client.cookies["sessionid"] = "x" * 32
    answer = client.get(reverse("history"))
    assert answer.status_code == 302 and answer["Location"].startswith(reverse("login"))
    signed_in = client.post(reverse("login"), {"username": "alice", "password": "alice-password-1"})
    assert signed_in.status_code == 302
    assert client.cookies["sessionid"].value != "x" * 32
    assert Session.objects.filter(session_key=client.cookies["sessionid"].value).exists()
    assert client.get(reverse("history")).status_code == 200


def test_an_api_poll_from_a_signed_in_browser_reads_no_session(
    api, user, django_assert_num_queries, settings
):
    """The browser's middleware does no work on the API path: with a session cookie sent too, a
    poll is still the one statement (no session row, no user row)."""
    settings.PLAYGROUND_KEY_CACHE_SECONDS = 60
    api.client.force_login(user)
    task_id = api.submit().json()["task_id"]
    api.get(f"/api/v1/tasks/{task_id}")
    with django_assert_num_queries(1):
        assert api.get(f"/api/v1/tasks/{task_id}").status_code == 200
