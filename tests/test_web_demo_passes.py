"""Demo passes: a guest link for chosen models, spending the owner's money up to a cap."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from playground.catalog.schema_forms import as_form_data
from playground.generations.models import Task
from playground.keys.models import DemoPass

from .helpers import SEED, enter_demo, seed_input

PLAY = reverse("play", args=[SEED])


@pytest.fixture
def owner(client, user, catalog):
    client.force_login(user)
    return client


@pytest.fixture
def demo_pass(owner):
    html = owner.post(
        reverse("pass-create"),
        {"name": "Friday demo", "models": [SEED, "gpt-image-2"], "spend_cap": "0.25", "hours": "2"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "Pass “Friday demo” created" in html
    demo = DemoPass.objects.get()
    link = html[html.index(f'id="pass-link-{demo.pk}"') :].split(">", 1)[1].split("<", 1)[0]
    return demo, link


@pytest.fixture
def guest(demo_pass):
    link = demo_pass[1]
    browser = Client()
    enter_demo(browser, link)
    return browser


def guest_submit(guest, catalog, django_capture_on_commit_callbacks, **overrides):
    with django_capture_on_commit_callbacks(execute=True):
        return guest.post(PLAY, as_form_data(catalog[SEED], seed_input(**overrides)))


def test_the_link_lets_a_guest_generate_with_the_owners_account(
    guest, demo_pass, user, catalog, django_capture_on_commit_callbacks
):
    html = guest.get(PLAY).content.decode()
    assert "You are using the demo pass “Friday demo”" in html
    assert "Demo: Friday demo" in html
    response = guest_submit(guest, catalog, django_capture_on_commit_callbacks, prompt="guest art")
    task = Task.objects.get()
    assert response["Location"] == reverse("task", args=[task.pk])
    assert (task.owner, task.demo_pass, task.source) == (user, demo_pass[0], "demo")
    assert "gallery" in guest.get(response["Location"]).content.decode()


def test_the_guest_sees_only_the_chosen_models(guest):
    html = guest.get(PLAY).content.decode()
    assert "GPT Image 2" in html and "Kling V3" not in html
    assert guest.get(reverse("play", args=["kling-v3"])).status_code == 404


def test_the_guest_cannot_reach_the_owners_pages_or_other_tasks(guest, user, catalog, make_task):
    private = make_task(user, catalog)
    assert guest.get(reverse("task", args=[private.pk])).status_code == 404
    for name in ("history", "keys", "usage"):
        assert guest.get(reverse(name)).status_code == 302  # to sign-in
    html = guest.get(PLAY).content.decode()
    assert "pg_live_" not in html and "Keys</a>" not in html


def test_guests_spend_up_to_the_cap(guest, catalog, django_capture_on_commit_callbacks):
    assert guest_submit(guest, catalog, django_capture_on_commit_callbacks, prompt="1").status_code == 302
    assert guest_submit(guest, catalog, django_capture_on_commit_callbacks, prompt="2").status_code == 302
    refused = guest_submit(guest, catalog, django_capture_on_commit_callbacks, prompt="3")
    assert refused.status_code == 422
    assert "would go over the demo pass&#x27;s budget" in refused.content.decode()
    assert Task.objects.count() == 2


def test_guest_tasks_show_in_the_owners_history_marked(
    guest, owner, catalog, django_capture_on_commit_callbacks
):
    guest_submit(guest, catalog, django_capture_on_commit_callbacks, prompt="from the guest")
    html = owner.get(reverse("history")).content.decode()
    assert "from the guest" in html and "demo: Friday demo" in html


def test_the_owner_sees_use_and_spend_and_revokes_in_one_click(
    guest, owner, demo_pass, catalog, django_capture_on_commit_callbacks
):
    guest_submit(guest, catalog, django_capture_on_commit_callbacks)
    html = owner.get(reverse("keys")).content.decode()
    row = html[html.index(f'id="pass-{demo_pass[0].pk}"') :].split("</tr>")[0]
    assert "$0.1206" in row and 'data-label="Tasks">1</td>' in row
    owner.post(reverse("pass-revoke", args=[demo_pass[0].pk]), headers={"HX-Request": "true"})
    refused = guest.get(PLAY)
    assert refused.status_code == 403
    assert "revoked by its owner" in refused.content.decode()
    assert guest.get(demo_pass[1]).status_code == 403  # the link itself is dead too


def test_an_expired_pass_is_refused(guest, demo_pass):
    DemoPass.objects.filter(pk=demo_pass[0].pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = guest.get(PLAY)
    assert response.status_code == 403 and "expired" in response.content.decode()


def test_a_forged_link_is_refused(client, db):
    response = client.get(reverse("demo", args=["made-up:signature"]))
    assert response.status_code == 403 and "not valid" in response.content.decode()


def test_another_owner_cannot_revoke_my_pass(demo_pass, other_user):
    stranger = Client()
    stranger.force_login(other_user)
    assert stranger.post(reverse("pass-revoke", args=[demo_pass[0].pk])).status_code == 404
    assert DemoPass.objects.get().status == "active"


def test_a_pass_needs_a_model_and_a_positive_cap(owner):
    html = owner.post(
        reverse("pass-create"), {"name": "x", "spend_cap": "0", "hours": "1"}, headers={"HX-Request": "true"}
    ).content.decode()
    assert "This field is required." in html and "Enter at least $0.01." in html
    assert not DemoPass.objects.exists()


def test_a_guest_sees_no_api_snippets_they_have_no_key_to_run(
    guest, owner, catalog, django_capture_on_commit_callbacks
):
    response = guest_submit(guest, catalog, django_capture_on_commit_callbacks, prompt="guest art")
    html = guest.get(response["Location"]).content.decode()
    assert "gallery" in html
    assert 'id="api"' not in html and "PLAYGROUND_API_KEY" not in html and "Show as code" not in html
    html = owner.get(response["Location"]).content.decode()  # the pass's owner, signed in, has keys
    assert 'id="api"' in html and "PLAYGROUND_API_KEY" in html and "Show as code" in html


def test_revoking_a_pass_cancels_its_guests_unfinished_tasks(
    guest, owner, demo_pass, catalog, queue_only, django_capture_on_commit_callbacks
):
    guest_submit(guest, catalog, django_capture_on_commit_callbacks, prompt="still queued")
    owner.post(reverse("pass-revoke", args=[demo_pass[0].pk]), headers={"HX-Request": "true"})
    task = Task.objects.get()
    assert task.status == "cancelled" and task.cost_actual == 0


def test_each_active_pass_shows_its_link_as_a_qr_code(owner, demo_pass, user):
    """The QR code is the pass's link and nothing else (tests/e2e/test_present.py reads one off the
    screen); an ended pass has no link, so no code either."""
    from playground.access.passes import create_pass, revoke_pass
    from playground.web.join import qr_svg

    demo, link = demo_pass
    ended = create_pass(user, "Ended demo", [SEED], spend_cap=1, hours=1)
    revoke_pass(ended)
    html = owner.get(reverse("keys")).content.decode()
    row = html[html.index(f'id="pass-{demo.pk}"') : html.index("</tr>", html.index(f'id="pass-{demo.pk}"'))]
    assert qr_svg(link, label="").split(">", 1)[1] in row  # the <svg> in its box
    assert f'href="{reverse("present")}?pass={demo.pk}"' in row
    ended_row = html[html.index(f'id="pass-{ended.pk}"') :]
    assert "qr-code" not in ended_row[: ended_row.index("</tr>")]


def test_the_landing_page_offers_its_link_as_a_qr_code(demo_pass):
    from playground.web.join import qr_svg

    link = demo_pass[1]
    html = Client().get(link).content.decode()
    assert qr_svg(link, label="").split(">", 1)[1] in html
