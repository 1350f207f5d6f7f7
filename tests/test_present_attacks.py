"""Review of presentation mode and the audience QR code (issue 16 items 2 and 3): what an attack or
an ordinary mishap in a room found. Each test is one finding; see the review report."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from playground.access.passes import create_pass, pass_token, revoke_pass
from playground.catalog.schema_forms import as_form_data
from playground.generations.models import Status, Task
from playground.keys.models import DemoPass

from .helpers import SEED, enter_demo, seed_input

PRESENT = reverse("present")
PRESENT_SEED = reverse("present-model", args=[SEED])
HTMX = {"HX-Request": "true"}


@pytest.fixture
def signed_in(client, user, catalog):
    client.force_login(user)
    return client


def guest_of(demo_pass: DemoPass) -> Client:
    browser = Client()
    enter_demo(browser, reverse("demo", args=[pass_token(demo_pass)]))
    return browser


@pytest.fixture
def press(catalog, django_capture_on_commit_callbacks):
    def press(browser, prompt="a fox on stage", *, url=PRESENT_SEED, headers=HTMX):
        data = {**as_form_data(catalog[SEED], seed_input(prompt=prompt)), "form_token": f"tok-{prompt[:40]}"}
        with django_capture_on_commit_callbacks(execute=True):
            return browser.post(url, data, headers=headers)

    return press


def audience_strip(html: str) -> str:
    return re.search(r'<div id="audience-strip".*?</div>\s*</nav>', html, re.S).group(0)


# --- 1. A pass asked for that is not (or no longer) the presenter's active pass ------------------------


@pytest.mark.parametrize("asked", ["revoked", "expired", "someone else's"])
def test_a_pass_asked_for_that_is_not_active_never_turns_on_another_passs_audience(
    signed_in, user, other_user, press, asked
):
    """Presenting `?pass=<A>&audience=1` (the address the switch leaves), A is revoked or expires
    and the page is reloaded: the page falls back to the presenter's newest other pass, B, and
    shows *B's* audience results on the projector, polling, with the switch on, though nobody
    chose B's room. The audience strip must stay off for a pass nobody asked for."""
    room_b = create_pass(user, "Other room", [SEED], spend_cap=5, hours=2)
    press(guest_of(room_b), "a guest in the other room")
    if asked == "someone else's":
        room_a = create_pass(other_user, "Their room", [SEED], spend_cap=5, hours=2)
    else:
        room_a = create_pass(user, "This room", [SEED], spend_cap=5, hours=2)
        if asked == "revoked":
            revoke_pass(room_a)
        else:
            DemoPass.objects.filter(pk=room_a.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    html = signed_in.get(PRESENT, {"pass": room_a.pk, "audience": "1"}).content.decode()
    assert "not one of your active demo passes" in html
    other_rooms_task = Task.objects.get(demo_pass=room_b)
    strip = audience_strip(html)
    assert other_rooms_task.pk not in strip, "another room's results are shown"
    assert "hx-trigger" not in strip, "another room's results are polled"
    assert not re.search(r'id="show-audience"[^>]*checked', html)


# --- 2. The audience poll never ends --------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["revoked", "expired"])
def test_the_audience_poll_stops_once_the_pass_has_ended_and_its_tasks_have(signed_in, user, press, ending):
    """With "show audience results" on, the strip polls every 3 s for as long as the page is open,
    a revoked or expired pass included: nothing can join it any more and all its tasks have ended
    (revoking cancels them), yet a projector left on overnight asks 20 times a minute, each a
    query and a render (or a 304 after the same query). Once the pass has ended and none of its
    tasks is still running, the poll's answer should stop it (286, as every other poll does)."""
    demo = create_pass(user, "Friday demo", [SEED], spend_cap=5, hours=2)
    press(guest_of(demo), "front row")
    assert Task.objects.get().is_terminal
    if ending == "revoked":
        revoke_pass(demo)
    else:
        DemoPass.objects.filter(pk=demo.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    url = reverse("present-audience", args=[demo.pk])
    first = signed_in.get(url, headers=HTMX)
    assert first.status_code == 286
    assert "hx-trigger" not in first.content.decode()  # the strip swapped in polls no more
    assert "front row" in first.content.decode() or Task.objects.get().pk in first.content.decode()
    again = signed_in.get(url, headers={**HTMX, "If-None-Match": first.get("ETag", "")})
    assert again.status_code == 286  # never a 304 that keeps it polling


def test_the_audience_poll_goes_on_while_the_pass_is_active_or_a_task_still_runs(
    signed_in, user, press, queue_only
):
    demo = create_pass(user, "Friday demo", [SEED], spend_cap=5, hours=2)
    url = reverse("present-audience", args=[demo.pk])
    assert signed_in.get(url, headers=HTMX).status_code == 200  # active, nothing yet
    press(guest_of(demo), "front row")  # queued, not run
    DemoPass.objects.filter(pk=demo.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert signed_in.get(url, headers=HTMX).status_code == 200  # expired, a task still to end


# --- 3. Costs on the projector --------------------------------------------------------------------------


def without_hidden_costs(html: str) -> str:
    """The stage as a room sees it: present.css hides the panel's costs, events and actions."""
    stage = html[html.index('<div class="present-stage">') : html.index('<nav class="present-strip"')]
    for hidden in (
        r'<dl class="costs">.*?</dl>',
        r'<details class="events">.*?</details>',
        r'<p class="task-actions">.*?</p>',
    ):
        stage = re.sub(hidden, "", stage, flags=re.S)
    return stage


@pytest.mark.parametrize("status", [Status.FAILED, Status.CANCELLED])
def test_presentation_mode_never_puts_a_charge_on_the_screen(signed_in, user, press, status):
    """No costs in presentation mode is done by hiding the panel's Estimate/Charged list with
    CSS, but a failed task's alert ("It had already been billed, so its charge of $0.1206
    stands.") and a cancel's notice ("Cancelled too late: … its charge of $0.1206 stands.") are
    shown full size on the stage, for the presenter's own results and for any audience result
    they open."""
    press(signed_in)
    task = Task.objects.get()
    Task.objects.filter(pk=task.pk).update(
        status=status,
        cost_actual=Decimal("0.1206"),
        error={"code": "upstream_error", "message": "The platform refused."} if status == "failed" else None,
    )
    stage = without_hidden_costs(signed_in.get(PRESENT, {"task": task.pk}).content.decode())
    assert "$" not in stage, re.findall(r"[^<>]*\$[^<>]*", stage)


# --- 4. The choice of models and pass is lost by the page's own links ------------------------------------


def test_the_strip_and_pass_links_keep_the_chosen_models_pass_and_audience(signed_in, user, press):
    """README: "/present?models=gpt-image-2,kling-v3 (the choice stays through the page's links and
    submits)". The strip's links (what a click does without JavaScript) are `/present?task=<id>`
    and the QR panel's "Other passes" links are `?pass=<id>`: each drops `models` (the picker is
    back to every model), `pass` and `audience` (the audience strip goes off)."""
    lunch = create_pass(user, "Lunch demo", [SEED], spend_cap=5, hours=2)
    friday = create_pass(user, "Friday demo", [SEED], spend_cap=5, hours=2)
    chosen = f"gpt-image-2,{SEED}"
    url = reverse("present-model", args=[SEED])
    press(signed_in, url=f"{url}?models={chosen}&pass={friday.pk}&audience=1")
    task = Task.objects.get()
    html = signed_in.get(url, {"models": chosen, "pass": friday.pk, "audience": "1"}).content.decode()
    item = rf'<a href="([^"]*)"[^>]*hx-get="{reverse("task", args=[task.pk])}(?:\?[^"]*)?"'
    strip_link = re.search(item, html).group(1)
    assert "models=gpt-image-2%2C" in strip_link and "audience=1" in strip_link, strip_link
    other_pass = re.search(r'<a href="([^"]*pass=' + str(lunch.pk) + r'[^"]*)"', html).group(1)
    assert "models=gpt-image-2%2C" in other_pass, other_pass
