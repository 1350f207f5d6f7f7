"""Every door into an account is throttled (issue 13, item 1): Django admin's sign-in uses the same
lockout and rate limit as ours, and sign-up is rate-limited per client address. There is no
password reset to throttle (no e-mail flow exists; an administrator resets a password)."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import NoReverseMatch, reverse

from playground.access.models import SignInFailure

BOB_PASSWORD = "bob-password-1"
NEW_PASSWORD = "a-Long-passphrase-42"


@pytest.fixture
def bob(db):
    return get_user_model().objects.create_superuser("bob", password=BOB_PASSWORD)


def test_25_wrong_admin_passwords_then_the_right_one_does_not_sign_bob_in(bob):
    """The finding: 25 wrong passwords for `bob` at /admin/login/, all answered 200 and none
    recorded; the 26th, correct, signed in. Now the failures are recorded, the door closes with a
    429 after the lockout's five, and the right password is refused too while it is closed."""
    browser = Client()  # one client, no proxy: the address is REMOTE_ADDR, as in the probe
    statuses = [
        browser.post("/admin/login/", {"username": "bob", "password": f"guess-{n}"}).status_code
        for n in range(25)
    ]
    assert statuses[:5] == [200] * 5
    assert set(statuses[5:]) == {429}
    assert SignInFailure.objects.filter(username="bob", source="127.0.0.1").count() == 5

    right = browser.post("/admin/login/", {"username": "bob", "password": BOB_PASSWORD})
    assert right.status_code == 429
    assert "Too many sign-in attempts" in right.content.decode()
    assert int(right["Retry-After"]) > 0
    assert "_auth_user_id" not in browser.session
    assert browser.get("/admin/").status_code == 302  # still sent to the sign-in page


def test_the_admin_sign_in_counts_in_the_per_address_rate_limit_across_usernames(bob, settings):
    settings.PLAYGROUND_SIGNIN_RATE_LIMIT = "3/60"
    browser = Client()
    for name in ("carol", "dave", "erin"):
        assert browser.post("/admin/login/", {"username": name, "password": "x"}).status_code == 200
    refused = browser.post("/admin/login/", {"username": "bob", "password": BOB_PASSWORD})
    assert refused.status_code == 429
    assert "_auth_user_id" not in browser.session


def sign_up(browser, username, password=NEW_PASSWORD, confirm=None, **extra):
    return browser.post(
        reverse("signup"),
        {"username": username, "password1": password, "password2": confirm or password},
        **extra,
    )


def test_sign_up_is_rate_limited_per_client_address(db, settings, signup_open):
    settings.PLAYGROUND_SIGNUP_RATE_LIMIT = "3/3600"
    for n in range(3):
        assert sign_up(Client(), f"user{n}").status_code == 302
    refused = sign_up(Client(), "user3")
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert "Too many sign-up attempts. Try again in" in refused.content.decode()
    assert not get_user_model().objects.filter(username="user3").exists()
    assert get_user_model().objects.count() == 3


def test_a_refused_sign_up_keeps_the_username_but_never_the_password(db, settings, signup_open):
    settings.PLAYGROUND_SIGNUP_RATE_LIMIT = "1/3600"
    sign_up(Client(), "first")
    refused = sign_up(Client(), "second-person", password="Secret-Typed-99").content.decode()
    assert 'value="second-person"' in refused
    assert "Secret-Typed-99" not in refused


def test_failed_sign_ups_count_too_so_usernames_cannot_be_probed_in_bulk(db, settings, user, signup_open):
    settings.PLAYGROUND_SIGNUP_RATE_LIMIT = "2/3600"
    for _ in range(2):
        assert "already exists" in sign_up(Client(), "alice").content.decode()
    assert sign_up(Client(), "alice").status_code == 429


def test_the_sign_up_limit_is_per_address(db, settings, signup_open):
    settings.PLAYGROUND_SIGNUP_RATE_LIMIT = "1/3600"
    settings.PLAYGROUND_TRUSTED_PROXIES = ["127.0.0.1"]
    here, there = {"X-Forwarded-For": "198.51.100.66"}, {"X-Forwarded-For": "203.0.113.10"}
    assert sign_up(Client(), "one", headers=here).status_code == 302
    assert sign_up(Client(), "two", headers=here).status_code == 429
    assert sign_up(Client(), "three", headers=there).status_code == 302


def test_there_is_no_password_reset_door_to_throttle(client):
    for name in ("password_reset", "password-reset", "password_reset_confirm"):
        with pytest.raises(NoReverseMatch):
            reverse(name)
    assert client.get("/accounts/password/reset/").status_code == 404
