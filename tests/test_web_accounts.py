import re

from django.contrib.auth import get_user_model
from django.urls import reverse


def test_sign_in_with_a_password(client, user, catalog):
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-password-1"})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 302  # on to the playground


def test_a_wrong_password_is_refused_with_a_message(client, user):
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_with_no_account_the_sign_in_page_offers_to_create_the_first(client, db):
    assert "Create the first account" in client.get(reverse("login")).content.decode()
    response = client.post(
        reverse("first-account"),
        {"username": "root", "password1": "a-long-pass-9183", "password2": "a-long-pass-9183"},
    )
    assert response.status_code == 302
    admin = get_user_model().objects.get()
    assert admin.is_superuser and admin.is_staff


def test_the_first_account_page_is_gone_once_an_account_exists(client, user):
    assert client.get(reverse("first-account")).status_code == 404
    assert "Create the first account" not in client.get(reverse("login")).content.decode()


def test_sign_out_is_a_post(client, user):
    client.force_login(user)
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("history")).status_code == 302


def test_htmx_sends_the_csrf_token_from_the_body(client, user, catalog):
    client.force_login(user)
    html = client.get(reverse("play", args=["gpt-image-2"])).content.decode()
    assert '<body hx-headers=\'{"X-CSRFToken": "' in html
    scripts = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
    assert any("htmx" in src for src in scripts)
    # Every script is our own, served from /static/ (no CDN; a random CSRF token may spell "cdn").
    assert scripts and all(src.startswith("/static/") for src in scripts), scripts
