"""A demo link alone never switches a session (issue 13, item 6). The finding: `GET /demo/<token>`
silently moved a visitor's session into whatever pass the link named. Now the link shows a landing
page (the pass, its host, its models, its expiry) whose Enter button POSTs with CSRF; only that
POST makes the visitor a guest, and someone signed in or on another pass is told what it changes."""

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from playground.access.callers import DEMO_SESSION_KEY
from playground.access.passes import create_pass, pass_token

from ..helpers import SEED, enter_demo


@pytest.fixture
def friday(user, catalog):
    user.first_name, user.last_name = "Alice", "Liddell"
    user.save()
    demo = create_pass(user, "Friday demo", [SEED, "gpt-image-2"], Decimal("5"), 24)
    return demo, reverse("demo", args=[pass_token(demo)])


@pytest.fixture
def other_pass(other_user, catalog):
    demo = create_pass(other_user, "The booth", ["gpt-image-2"], Decimal("5"), 24)
    return demo, reverse("demo", args=[pass_token(demo)])


def test_opening_the_link_shows_the_landing_page_and_makes_nobody_a_guest(friday, catalog):
    demo, link = friday
    browser = Client()
    landing = browser.get(link)
    html = landing.content.decode()
    assert landing.status_code == 200
    assert "Friday demo" in html and "Alice Liddell invites you" in html
    assert catalog[SEED].title in html and catalog["gpt-image-2"].title in html
    assert demo.expires_at.strftime("%Y") in html
    assert re.search(r'<form method="post" action="' + re.escape(link) + r'">', html)
    assert 'name="csrfmiddlewaretoken"' in html and ">Enter</button>" in html
    assert "no-store" in landing["Cache-Control"]
    assert DEMO_SESSION_KEY not in browser.session
    assert browser.get(reverse("home")).status_code == 302  # still nobody: sent to sign in


def test_the_enter_button_without_a_csrf_token_is_refused(friday):
    _, link = friday
    browser = Client(enforce_csrf_checks=True)
    browser.get(link)
    assert browser.post(link).status_code == 403
    assert DEMO_SESSION_KEY not in browser.session


def test_entering_with_the_pages_token_makes_the_visitor_a_guest(friday):
    demo, link = friday
    browser = Client(enforce_csrf_checks=True)
    assert enter_demo(browser, link)["Location"] == reverse("home")
    assert browser.session[DEMO_SESSION_KEY] == demo.public_id
    assert browser.get(reverse("play", args=[SEED])).status_code == 200


def test_a_signed_in_user_opening_a_link_stays_signed_in_and_is_told_what_entering_does(
    friday, other_pass, other_user
):
    _, link = other_pass
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(other_user.__class__.objects.get(username="alice"))
    html = browser.get(link).content.decode()
    assert "You are signed in as alice. Entering signs you out" in html
    assert "_auth_user_id" in browser.session and DEMO_SESSION_KEY not in browser.session
    assert browser.get(reverse("history")).status_code == 200  # still her own account

    enter_demo(browser, link)
    assert "_auth_user_id" not in browser.session
    assert browser.session[DEMO_SESSION_KEY] == other_pass[0].public_id


def test_a_guest_opening_another_pass_stays_on_their_pass_until_they_enter(friday, other_pass):
    (mine, my_link), (theirs, their_link) = friday, other_pass
    browser = Client(enforce_csrf_checks=True)
    enter_demo(browser, my_link)
    guest = browser.session["demo_guest"]

    html = browser.get(their_link).content.decode()
    assert "You are a guest of “Friday demo” in this browser. Entering" in html
    assert browser.session[DEMO_SESSION_KEY] == mine.public_id and browser.session["demo_guest"] == guest

    enter_demo(browser, their_link)
    assert browser.session[DEMO_SESSION_KEY] == theirs.public_id
    assert browser.session["demo_guest"] != guest


def test_a_guest_reopening_their_own_link_is_told_they_are_back(friday):
    _, link = friday
    browser = Client()
    enter_demo(browser, link)
    guest = browser.session["demo_guest"]
    assert "already a guest of this pass" in browser.get(link).content.decode()
    enter_demo(browser, link)
    assert browser.session["demo_guest"] == guest  # finds their results again


def test_a_host_without_a_name_is_not_named(other_pass):
    html = Client().get(other_pass[1]).content.decode()
    text = re.sub(r"<[^>]*>", " ", html)  # what is shown: random tokens in attributes may spell "bob"
    assert "You are invited" in text and not re.search(r"\bbob\b", text, re.IGNORECASE)  # no username
