"""Access ending while a task is on screen: the polling panel says why and stops, never showing a
sign-in form inside the page or polling on."""

import re

import pytest
from django.urls import reverse

from playground.access.passes import create_pass, pass_token
from playground.generations.models import Task

from ..conftest import WORKER
from .conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SEED = "gemini-3-pro-image-preview-official"
POLL = re.compile(r"/tasks/task_\w+$")


@pytest.fixture
def worker(spawn):
    """A worker whose local engine takes 5 s per image: the task is still running when access ends."""
    return spawn(*WORKER, PLAYGROUND_LOCAL_ENGINE_DELAY=5)


def start_a_slow_task(page):
    page.fill("textarea[name=prompt]", "a slow one")
    page.click("button.generate")
    page.wait_for_selector("#task-status .badge[data-status=processing]")


def count_polls(page) -> list:
    polls = []
    page.on("request", lambda r: polls.append(r.url) if POLL.search(r.url) and r.method == "GET" else None)
    return polls


def assert_ended_cleanly(page, message, polls):
    panel = page.locator("#task-status")
    panel.get_by_text(message).wait_for()
    assert page.locator("#task-status input[type=password]").count() == 0, "a sign-in form in the panel"
    assert page.locator("form input[name=password]").count() == 0
    seen = len(polls)
    page.wait_for_timeout(2500)
    assert len(polls) == seen, "polling went on"


def test_revoking_a_pass_while_a_guest_watches_a_task_shows_the_guest_why(new_page, worker, person):
    demo = create_pass(person, "Friday demo", [SEED], spend_cap=5, hours=2)
    guest = new_page()
    guest.goto(reverse("demo", args=[pass_token(demo)]))
    guest.get_by_role("button", name="Enter").click()
    guest.wait_for_selector("textarea[name=prompt]")
    polls = count_polls(guest)
    start_a_slow_task(guest)

    owner = new_page()
    sign_in(owner, person)
    owner.goto("/keys")
    row = owner.locator("#demo-passes tr", has_text="Friday demo")
    row.get_by_text("Revoke", exact=True).click()  # asks first
    row.get_by_role("button", name="Revoke for good").click()
    owner.locator("#demo-passes .badge", has_text="revoked").wait_for()

    assert_ended_cleanly(guest, "This demo pass was revoked by its owner.", polls)
    assert Task.objects.get().status == "cancelled"  # the guest's running task stopped spending
    guest.reload()
    assert "revoked by its owner" in guest.content()  # and it keeps saying so, in words for a guest
    assert guest.locator("input[name=password]").count() == 0


def test_signing_out_in_one_tab_ends_the_polling_in_another_with_a_way_back(new_page, worker, person):
    watching = new_page()
    sign_in(watching, person)
    other_tab = watching.context.new_page()
    polls = count_polls(watching)
    start_a_slow_task(watching)

    other_tab.goto("/history")
    other_tab.get_by_role("button", name="Sign out").click()
    other_tab.wait_for_url("**/accounts/login/**")

    assert_ended_cleanly(watching, "Please sign in again.", polls)
    watching.get_by_role("link", name="Sign in").click()
    watching.wait_for_url("**/accounts/login/?next=/tasks/*")
    watching.fill("#id_username", person.username)
    watching.fill("#id_password", "e2e-password-1")
    watching.click("button[type=submit]")
    watching.wait_for_url(POLL)  # back at the task, which has finished meanwhile or soon will
    watching.wait_for_selector("#task-status .badge[data-status=succeeded]", timeout=30_000)
