"""Sign-in throttling harms only the attacker: the lockout is per (username, client address), the
rate limit per address across usernames, and the address is believed from X-Forwarded-For only
when a trusted proxy sent it. Our sign-in page and Django admin's behave the same."""

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from playground.access.models import SignInFailure

ALICE, BOB = ("alice", "alice-password-1"), ("bob", "bob-password-1")
ATTACKER, ELSEWHERE = "198.51.100.66", "203.0.113.10"
LOCKED = "Too many sign-in attempts. Try again in 15 minutes."


def sign_in(username, password, address, *, peer="127.0.0.1", path=None):
    """One POST of the sign-in form from a fresh browser at `address` (sent as X-Forwarded-For by
    the proxy at `peer`); the response, with `signed_in` saying whether it worked."""
    browser = Client()
    response = browser.post(
        path or reverse("login"),
        {"username": username, "password": password},
        REMOTE_ADDR=peer,
        headers={"X-Forwarded-For": address} if address else {},
    )
    response.signed_in = "_auth_user_id" in browser.session
    return response


@pytest.fixture
def behind_proxy(settings):
    settings.PLAYGROUND_TRUSTED_PROXIES = ["127.0.0.1"]


def assert_locked(response):
    assert response.status_code == 429
    assert LOCKED in response.content.decode()
    assert 840 < int(response["Retry-After"]) <= 900
    assert not response.signed_in


def test_it_locks_out_only_the_pair_of_username_and_address(user, other_user, behind_proxy):
    for _ in range(5):
        failed = sign_in("alice", "wrong", ATTACKER)
        assert failed.status_code == 200 and not failed.signed_in
    assert_locked(sign_in("alice", "wrong", ATTACKER))
    assert_locked(sign_in(*ALICE, ATTACKER))  # even the right password, from there

    assert sign_in(*ALICE, ELSEWHERE).signed_in  # alice from anywhere else
    assert sign_in(*BOB, ATTACKER).signed_in  # other people from the attacker's address
    assert_locked(sign_in(*ALICE, ATTACKER))  # alice signing in elsewhere unlocks nothing here


def test_the_locked_page_still_lets_someone_else_sign_in(user, other_user, behind_proxy):
    for _ in range(6):
        locked = sign_in("alice", "wrong", ATTACKER)
    html = locked.content.decode()
    assert 'name="username"' in html and 'value="alice"' in html and 'name="password"' in html


def test_a_refused_attempt_never_checks_the_password(user, behind_proxy):
    for _ in range(5):
        sign_in("alice", "wrong", ATTACKER)
    with mock.patch("django.contrib.auth.forms.authenticate") as authenticate:
        assert_locked(sign_in(*ALICE, ATTACKER))
    authenticate.assert_not_called()


def test_spellings_of_one_username_share_its_lock(user, behind_proxy):
    full_width = "".join(chr(ord(letter) + 0xFEE0) for letter in "alice")  # as a CJK keyboard types it
    for name in ("alice", "Alice", " ALICE", "alice ", full_width):
        sign_in(name, "wrong", ATTACKER)
    assert_locked(sign_in(*ALICE, ATTACKER))


def test_the_lock_ends_when_the_failures_leave_the_window(user, behind_proxy):
    for _ in range(5):
        sign_in("alice", "wrong", ATTACKER)
    assert_locked(sign_in(*ALICE, ATTACKER))
    SignInFailure.objects.update(created_at=timezone.now() - timedelta(minutes=15, seconds=1))
    assert sign_in(*ALICE, ATTACKER).signed_in


def test_the_wait_counts_from_the_oldest_failure_that_still_locks(user, behind_proxy):
    for _ in range(5):
        sign_in("alice", "wrong", ATTACKER)
    SignInFailure.objects.update(created_at=timezone.now() - timedelta(minutes=10))
    locked = sign_in(*ALICE, ATTACKER)
    assert locked.status_code == 429
    assert "Try again in 5 minutes." in locked.content.decode()
    assert 240 < int(locked["Retry-After"]) <= 300


def test_a_successful_sign_in_forgets_the_failures_of_its_own_pair_only(user, behind_proxy):
    for _ in range(4):
        sign_in("alice", "wrong", ATTACKER)
        sign_in("alice", "wrong", ELSEWHERE)
    assert sign_in(*ALICE, ELSEWHERE).signed_in
    assert sign_in("alice", "wrong", ELSEWHERE).status_code == 200  # a fresh count there
    sign_in("alice", "wrong", ATTACKER)  # the fifth from the attacker's address
    assert_locked(sign_in(*ALICE, ATTACKER))


def test_the_rate_limit_per_address_holds_across_usernames(user, other_user, behind_proxy, settings):
    settings.PLAYGROUND_SIGNIN_RATE_LIMIT = "4/60"
    for name in ("carol", "dave", "erin", "frank"):
        assert sign_in(name, "guess", ATTACKER).status_code == 200
    limited = sign_in(*BOB, ATTACKER)
    assert limited.status_code == 429 and not limited.signed_in
    assert "Too many sign-in attempts. Try again in 1 minute." in limited.content.decode()
    assert 1 <= int(limited["Retry-After"]) <= 61
    assert sign_in(*BOB, ELSEWHERE).signed_in  # per address


def test_the_rate_limit_counts_an_ipv6_network_as_one_address(user, behind_proxy, settings):
    settings.PLAYGROUND_SIGNIN_RATE_LIMIT = "3/60"
    for host in (1, 2, 3):
        sign_in("someone", "guess", f"2001:db8:1:2::{host}")
    assert sign_in(*ALICE, "2001:db8:1:2::ff").status_code == 429  # the same /64
    assert sign_in(*ALICE, "2001:db8:1:3::1").signed_in  # another /64


def test_without_trusted_proxies_x_forwarded_for_is_ignored(user, other_user):
    for n in range(5):
        sign_in("alice", "wrong", f"192.0.2.{n}")
    assert_locked(sign_in(*ALICE, ELSEWHERE))  # claiming another address changes nothing
    assert sign_in(*BOB, ELSEWHERE).signed_in


def test_a_forged_x_forwarded_for_from_an_untrusted_peer_is_ignored(user, settings):
    settings.PLAYGROUND_TRUSTED_PROXIES = ["10.0.0.2"]
    for n in range(5):
        sign_in("alice", "wrong", f"192.0.2.{n}", peer=ATTACKER)
    assert_locked(sign_in(*ALICE, ELSEWHERE, peer=ATTACKER))
    assert sign_in(*ALICE, ATTACKER, peer="10.0.0.2").status_code == 429  # the proxy says the same
    assert sign_in(*ALICE, ELSEWHERE, peer="10.0.0.2").signed_in


def test_what_the_client_writes_left_of_the_proxys_entry_is_ignored(user, behind_proxy):
    # The proxy appends the address it saw; whatever the client put before it cannot help it.
    for n in range(5):
        sign_in("alice", "wrong", f"192.0.2.{n}, {ATTACKER}")
    assert_locked(sign_in(*ALICE, f"{ELSEWHERE}, {ATTACKER}"))


def test_django_admin_sign_in_is_throttled_the_same_way(admin_user, user, behind_proxy):
    admin_login = reverse("admin:login")
    for _ in range(5):
        assert sign_in("admin", "wrong", ATTACKER, path=admin_login).status_code == 200
    locked = sign_in("admin", "password", ATTACKER, path=admin_login)
    assert_locked(locked)
    assert '<p class="errornote">' in locked.content.decode()  # on the admin's own page
    assert sign_in("admin", "password", ELSEWHERE, path=admin_login).signed_in
    assert_locked(sign_in("admin", "password", ATTACKER))  # one lock for both forms
    assert sign_in(*ALICE, ATTACKER).signed_in


def test_a_lockout_can_be_turned_off(user, behind_proxy, settings):
    settings.PLAYGROUND_LOGIN_MAX_FAILURES = 0
    for _ in range(10):
        sign_in("alice", "wrong", ATTACKER)
    assert sign_in(*ALICE, ATTACKER).signed_in
    assert not SignInFailure.objects.exists()


def test_old_failures_are_deleted_as_new_attempts_come(user, behind_proxy):
    sign_in("alice", "wrong", ATTACKER)
    SignInFailure.objects.update(created_at=timezone.now() - timedelta(days=1))
    sign_in("bob", "wrong", ELSEWHERE)
    assert list(SignInFailure.objects.values_list("username", flat=True)) == ["bob"]


def test_signing_up_is_not_counted_as_a_failure(db, behind_proxy, signup_open):
    Client().post(
        reverse("signup"),
        {"username": "dana", "password1": "a-long-pass-4711", "password2": "a-long-pass-4711"},
    )
    assert get_user_model().objects.filter(username="dana").exists()
    assert not SignInFailure.objects.exists()
