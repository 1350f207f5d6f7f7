from django.contrib.auth import get_user_model
from django.urls import reverse


def test_sign_up_creates_an_account_and_signs_in(client, catalog, signup_open):
    response = client.post(
        reverse("signup"),
        {"username": "dana", "password1": "a-long-pass-4711", "password2": "a-long-pass-4711"},
    )
    assert response.status_code == 302
    assert get_user_model().objects.filter(username="dana").exists()
    assert client.get(reverse("history")).status_code == 200


def test_sign_up_is_closed_unless_turned_on(client, user):
    """People join by a team's invite link; open sign-up is PLAYGROUND_SIGNUP=true."""
    assert client.get(reverse("signup")).status_code == 404
    assert "Create an account" not in client.get(reverse("login")).content.decode()


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
