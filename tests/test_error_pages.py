"""Browser pages answer errors with the styled pages of templates/ (in the base layout, with a
way on); /api/ keeps its JSON error shape. DEBUG is off, as in production."""

import pytest
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import path
from django.views.decorators.http import require_POST

from playground.api import errors
from playground.keys.models import ApiKey
from playground.urls import *  # noqa: F403 (this module is the URLconf of these tests, handlers included)
from playground.urls import urlpatterns as project_urlpatterns


def broken_view(request):
    raise RuntimeError("a bug")


def forbidden_view(request):
    raise PermissionDenied


@require_POST
def accepting_view(request):
    return HttpResponse("accepted")


urlpatterns = [
    path("broken", broken_view),
    path("api/v1/broken", broken_view),
    path("accepting", accepting_view),
    path("forbidden", forbidden_view),
    path("api/v1/forbidden", forbidden_view),
    *project_urlpatterns,
]

pytestmark = pytest.mark.urls(__name__)


@pytest.fixture(autouse=True)
def production(settings):
    settings.DEBUG = False


def assert_styled_page(response, status: int, title: str) -> str:
    html = response.content.decode()
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    assert f"<h1>{title}</h1>" in html
    assert 'class="top"' in html and "css/app.css" in html  # the base layout
    assert 'aria-label="Ways on"' in html and 'href="/"' in html
    return html


def test_it_answers_a_missing_page_with_the_styled_404(client, user):
    client.force_login(user)
    html = assert_styled_page(client.get("/no/such/page"), 404, "Page not found")
    assert "Sign out" in html  # the header still knows who is signed in
    assert 'href="/accounts/login/"' not in html


def test_it_offers_sign_in_to_someone_signed_out(client, db):
    html = assert_styled_page(client.get("/no/such/page"), 404, "Page not found")
    assert 'href="/accounts/login/"' in html


def test_it_answers_another_users_task_with_the_styled_404(client, user, other_user, catalog, make_task):
    theirs = make_task(other_user, catalog)
    client.force_login(user)
    html = assert_styled_page(client.get(f"/tasks/{theirs.pk}"), 404, "Page not found")
    assert theirs.pk not in html


def test_it_answers_a_form_without_its_csrf_token_with_the_styled_403(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post("/keys/new", {"name": "no token"})
    html = assert_styled_page(response, 403, "This form has expired")
    assert "Sign out" in html  # rendered with the request (Django's own view renders without)
    assert not ApiKey.objects.filter(user=user).exists()


def test_it_answers_a_refusal_with_the_styled_403(client, user):
    client.force_login(user)
    assert_styled_page(client.get("/forbidden"), 403, "Not allowed")


def test_the_csrf_check_still_lets_a_form_with_its_token_through(user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    token = client.get("/keys").cookies["csrftoken"].value
    response = client.post("/accepting", {"csrfmiddlewaretoken": token})
    assert response.status_code == 200


def test_it_answers_a_crash_with_the_styled_500_and_its_request_id(client, user):
    client.force_login(user)
    client.raise_request_exception = False
    response = client.get("/broken", headers={"X-Request-Id": "req_traceable1"})
    html = assert_styled_page(response, 500, "Something went wrong on our side")
    assert "req_traceable1" in html
    assert "RuntimeError" not in html and "a bug" not in html


def test_the_500_page_renders_without_the_database():
    # No `db` fixture: pytest-django refuses any query, so a page that made one would fail here.
    response = errors.handler500(RequestFactory().get("/broken"))
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()


def test_the_api_keeps_its_json_errors(client, key):
    client.raise_request_exception = False
    headers = {"Authorization": f"Bearer {key}"}
    missing = client.get("/api/v1/no-such-thing", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    refused = client.get("/api/v1/forbidden", headers=headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    crashed = client.get("/api/v1/broken", headers=headers)
    assert crashed.status_code == 500
    assert crashed.json()["error"]["code"] == "server_error"
    assert crashed.json()["error"]["request_id"] == crashed["X-Request-Id"]
