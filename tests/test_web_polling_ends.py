"""A page that polls or posts after access ended (signed out, pass revoked, task out of reach) gets
an answer that stops htmx and says why, never the sign-in form swapped into a fragment."""

import pytest
from django.test import Client
from django.urls import reverse

from playground.access.passes import create_pass, pass_token, revoke_pass
from playground.catalog.schema_forms import as_form_data
from playground.generations.models import Task

from .helpers import SEED, enter_demo, seed_input

HTMX = {"HX-Request": "true", "HX-Current-URL": "http://testserver/play/" + SEED}


@pytest.fixture
def running(user, catalog, queue_only, make_task):
    return make_task(user, catalog)


def assert_stops_with(response, message):
    assert response.status_code == 286  # htmx stops polling
    assert response["HX-Retarget"] == "#task-status" and response["HX-Reswap"] == "outerHTML"
    assert message in response.content.decode()
    assert 'id="id_password"' not in response.content.decode()


def test_a_poll_after_signing_out_stops_and_asks_to_sign_in_again(client, user, running):
    client.force_login(user)
    assert client.get(reverse("task", args=[running.pk]), headers=HTMX).status_code == 200
    client.logout()
    response = client.get(reverse("task", args=[running.pk]), headers=HTMX)
    assert_stops_with(response, "Please sign in again.")
    assert f'href="/accounts/login/?next=/play/{SEED}"' in response.content.decode()


def test_a_poll_after_the_password_changed_elsewhere_stops_and_asks_to_sign_in_again(client, user, running):
    """The poll reads the account with the task instead of loading it on its own
    (`access.callers.confirm_session`): a password changed in another browser still ends this
    session at its next poll, and for good (the session is flushed, as Django does)."""
    client.force_login(user)
    assert client.get(reverse("task", args=[running.pk]), headers=HTMX).status_code == 200
    user.set_password("a brand new passphrase")
    user.save()
    assert_stops_with(client.get(reverse("task", args=[running.pk]), headers=HTMX), "Please sign in again.")
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("task", args=[running.pk])).status_code == 302  # the page: to sign in


def test_a_poll_of_a_disabled_account_stops(client, user, running):
    client.force_login(user)
    user.is_active = False
    user.save()
    assert_stops_with(client.get(reverse("task", args=[running.pk]), headers=HTMX), "Please sign in again.")


def test_a_poll_survives_a_secret_key_rotation_with_the_old_key_as_fallback(client, user, running, settings):
    client.force_login(user)
    old = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-secret-key-" + "x" * 40, [old]
    assert client.get(reverse("task", args=[running.pk]), headers=HTMX).status_code == 200
    settings.SECRET_KEY_FALLBACKS = []  # the session's hash was renewed with the new key
    assert client.get(reverse("task", args=[running.pk]), headers=HTMX).status_code == 200


def test_a_poll_of_a_revoked_pass_stops_and_says_so(
    user, catalog, queue_only, django_capture_on_commit_callbacks
):
    demo = create_pass(user, "Demo", [SEED], spend_cap=5, hours=1)
    guest = Client()
    enter_demo(guest, reverse("demo", args=[pass_token(demo)]))
    with django_capture_on_commit_callbacks(execute=True):
        guest.post(reverse("play", args=[SEED]), as_form_data(catalog[SEED], seed_input()))
    task = Task.objects.get()
    revoke_pass(demo)
    assert_stops_with(guest.get(reverse("task", args=[task.pk]), headers=HTMX), "revoked by its owner")
    # Without htmx the page says so too, and keeps saying so (never a sign-in form for a guest).
    for _ in range(2):
        page = guest.get(reverse("task", args=[task.pk]))
        assert page.status_code == 403 and "revoked by its owner" in page.content.decode()


def test_a_poll_of_a_task_out_of_reach_stops(client, other_user, user, catalog, queue_only, make_task):
    theirs = make_task(other_user, catalog)
    client.force_login(user)
    assert_stops_with(client.get(reverse("task", args=[theirs.pk]), headers=HTMX), "no longer available")
    assert client.get(reverse("task", args=[theirs.pk])).status_code == 404  # a plain visit: 404


def test_a_submit_after_signing_out_keeps_the_form_and_asks_to_sign_in(client, user, catalog):
    client.force_login(user)
    client.logout()
    response = client.post(reverse("play", args=[SEED]), {"prompt": "typed"}, headers=HTMX)
    assert_stops_with(response, "Please sign in again.")  # the panel says so; the form stays as typed


def test_an_htmx_action_on_a_signed_in_page_after_signing_out_navigates_to_sign_in(client, user):
    client.force_login(user)
    client.logout()
    response = client.post(reverse("key-create"), {"name": "x"}, headers=HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith("/accounts/login/?next=/keys/new")
    assert response.content == b""


def test_access_ended_on_the_model_picker_survives_its_hx_select(client, user, catalog):
    """The picker swaps with hx-select=".play"; the access-ended panel has none, so it reselects
    itself (else htmx would select nothing and the panel vanish without a word)."""
    page = Client()
    response = page.post(reverse("pick-model"), {"model": SEED, "switch_from": SEED}, headers=HTMX)
    assert response["HX-Retarget"] == "#task-status"
    body = response.content.decode()
    assert response["HX-Reselect"] == "#task-status"
    assert '<section id="task-status"' in body and "Please sign in again." in body
