"""The Keys page's "Webhook signing secret": hidden until revealed (never cached), rotated with a
grace period, and only ever its owner's."""

import re

import pytest
from cryptography.fernet import Fernet
from django.test import Client
from django.urls import reverse

from playground.keys.models import WebhookSecret
from playground.keys.webhook_secrets import current_webhook_secret, signing_secrets

WHSEC = re.compile(r"whsec_[A-Za-z0-9+/]{32}")
HTMX = {"HX-Request": "true"}
REVEAL, ROTATE = reverse("webhook-secret-reveal"), reverse("webhook-secret-rotate")


@pytest.fixture
def signed_in(client, user, catalog):
    client.force_login(user)
    return client


def test_the_page_offers_the_secret_without_showing_it_until_revealed(signed_in, user):
    page = signed_in.get(reverse("keys")).content.decode()
    assert "Webhook signing secret" in page and "None yet" in page
    assert not WebhookSecret.objects.exists()  # the page alone makes none

    revealed = signed_in.post(REVEAL, headers=HTMX)

    html = revealed.content.decode()
    assert html.lstrip().startswith('<section id="webhook-secret"')
    assert WHSEC.findall(html) == [current_webhook_secret(user.pk)]
    assert "no-store" in revealed["Cache-Control"]
    again = signed_in.get(reverse("keys")).content.decode()
    assert not WHSEC.search(again)
    assert f"whsec_…{current_webhook_secret(user.pk)[-4:]}" in again


def test_without_javascript_reveal_answers_the_whole_page_with_the_secret_never_cached(signed_in, user):
    revealed = signed_in.post(REVEAL)

    html = revealed.content.decode()
    assert revealed.status_code == 200 and "<h1>Keys &amp; access</h1>" in html
    assert WHSEC.findall(html) == [current_webhook_secret(user.pk)]
    assert "no-store" in revealed["Cache-Control"]


def test_rotate_shows_the_new_secret_and_how_long_the_old_one_still_signs(signed_in, user, settings):
    settings.PLAYGROUND_WEBHOOK_SECRET_GRACE = 24 * 3600
    old = current_webhook_secret(user.pk)

    rotated = signed_in.post(ROTATE, headers=HTMX)

    html = rotated.content.decode()
    new = current_webhook_secret(user.pk)
    assert WHSEC.findall(html) == [new] and new != old
    assert "no-store" in rotated["Cache-Control"]
    assert "keeps signing beside it for 1\xa0day" in html
    assert f"whsec_…{old[-4:]}" in html and "still signs until" in html
    assert signing_secrets(user.pk) == [new, old]


def test_after_a_leak_rotating_with_end_previous_stops_every_earlier_secret_at_once(
    signed_in, user, settings
):
    settings.PLAYGROUND_WEBHOOK_SECRET_GRACE = 24 * 3600
    leaked = current_webhook_secret(user.pk)
    signed_in.post(ROTATE, headers=HTMX)  # an ordinary rotation first: two secrets sign
    assert len(signing_secrets(user.pk)) == 2

    rotated = signed_in.post(ROTATE, {"end_previous": "on"}, headers=HTMX)

    html = rotated.content.decode()
    new = current_webhook_secret(user.pk)
    assert signing_secrets(user.pk) == [new] and leaked not in signing_secrets(user.pk)
    assert "Earlier secrets no longer sign" in html and "still signs until" not in html
    assert WebhookSecret.objects.filter(owner=user).count() == 1


def test_one_person_never_sees_anothers_secret(signed_in, client, user, other_user):
    alices = WHSEC.search(signed_in.post(REVEAL).content.decode()).group()

    client.force_login(other_user)
    bobs_page = client.get(reverse("keys")).content.decode()
    bobs = WHSEC.search(client.post(REVEAL).content.decode()).group()
    rotated = client.post(ROTATE).content.decode()

    assert alices == current_webhook_secret(user.pk)
    assert bobs != alices and WHSEC.findall(rotated) == [current_webhook_secret(other_user.pk)]
    assert signing_secrets(other_user.pk)[1] == bobs
    assert alices not in bobs_page + rotated and f"whsec_…{alices[-4:]}" not in bobs_page
    assert signing_secrets(user.pk) == [alices]  # Bob's rotation left Alice's alone


def test_an_unreadable_secret_says_to_rotate_and_rotating_mends_it(signed_in, user, settings):
    settings.PLAYGROUND_FERNET_KEYS = [Fernet.generate_key().decode()]
    current_webhook_secret(user.pk)
    settings.PLAYGROUND_FERNET_KEYS = [Fernet.generate_key().decode()]

    refused = signed_in.post(REVEAL, headers=HTMX).content.decode()
    assert "cannot be decrypted" in refused and not WHSEC.search(refused)

    rotated = signed_in.post(ROTATE, headers=HTMX).content.decode()
    assert WHSEC.findall(rotated) == [current_webhook_secret(user.pk)]


@pytest.mark.parametrize("url", [REVEAL, ROTATE])
def test_reveal_and_rotate_need_a_signed_in_post_with_its_csrf_token(client, user, catalog, url):
    assert client.post(url).status_code == 302  # to sign in
    assert not WebhookSecret.objects.exists()
    client.force_login(user)
    assert client.get(url).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(url).status_code == 403
    assert not WebhookSecret.objects.exists()
