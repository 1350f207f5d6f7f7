from django.contrib.auth import get_user_model
from django.urls import reverse

from playground.keys.models import LoginFailure


def sign_in(client, password, username="alice", ip="10.9.8.7"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_sign_up_creates_an_account_and_signs_in(client, catalog):
    response = client.post(
        reverse("signup"),
        {"username": "dana", "password1": "a-long-pass-4711", "password2": "a-long-pass-4711"},
    )
    assert response.status_code == 302
    assert get_user_model().objects.filter(username="dana").exists()
    assert client.get(reverse("history")).status_code == 200


def test_sign_up_can_be_turned_off(client, settings, user):
    settings.PLAYGROUND_SIGNUP = False
    assert client.get(reverse("signup")).status_code == 404
    assert "Create an account" not in client.get(reverse("login")).content.decode()


def test_repeated_failures_lock_sign_in_with_a_clear_message(client, user, settings):
    settings.PLAYGROUND_LOGIN_MAX_FAILURES = 3
    for _ in range(3):
        assert sign_in(client, "wrong").status_code == 200
    locked = sign_in(client, "alice-password-1")  # even the right password
    assert locked.status_code == 429
    assert "Too many sign-in attempts. Try again in 15 minutes." in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_lockout_also_covers_other_usernames_from_the_same_address(client, user, settings):
    settings.PLAYGROUND_LOGIN_MAX_FAILURES = 3
    for name in ("x1", "x2", "x3"):
        sign_in(client, "wrong", username=name)
    assert sign_in(client, "alice-password-1").status_code == 429
    assert sign_in(client, "alice-password-1", ip="10.1.1.1").status_code == 302  # another address


def test_the_lockout_ends_after_its_window(client, user, settings):
    settings.PLAYGROUND_LOGIN_MAX_FAILURES = 2
    sign_in(client, "wrong")
    sign_in(client, "wrong")
    LoginFailure.objects.update(created_at="2000-01-01T00:00:00Z")
    assert sign_in(client, "alice-password-1").status_code == 302


def test_a_successful_sign_in_clears_the_failures(client, user, settings):
    sign_in(client, "wrong")
    sign_in(client, "alice-password-1")
    assert not LoginFailure.objects.filter(username="alice").exists()


def test_password_change(client, user):
    client.force_login(user)
    response = client.post(
        reverse("password-change"),
        {
            "old_password": "alice-password-1",
            "new_password1": "new-pass-8812x",
            "new_password2": "new-pass-8812x",
        },
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("new-pass-8812x")


def test_admin_is_there_for_staff(admin_client):
    assert admin_client.get("/admin/keys/apikey/").status_code == 200
