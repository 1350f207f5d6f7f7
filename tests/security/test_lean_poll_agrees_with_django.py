"""The lean status poll (`session_caller(lean=True)` + `confirm_session`, which checks the session on
the account row joined to the task) accepts exactly the sessions Django's own `get_user` accepts,
session mutation by session mutation. For each, the poll (lean) and the thumbnail poll
(which goes through request.user, i.e. Django) must agree on access, and on whether the session is
flushed."""

import pytest
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.test import Client
from django.urls import reverse

from playground.access.passes import create_pass, pass_token

from ..helpers import enter_demo

HTMX = {"HX-Request": "true"}


@pytest.fixture
def running(user, catalog, queue_only, make_task):
    return make_task(user, catalog)


def lean(client, task):
    return client.get(reverse("task", args=[task.pk]), headers=HTMX)


def django_side(client, task):
    return client.get(reverse("task-thumb", args=[task.pk]), headers=HTMX)


def verdict(response):
    body = response.content.decode()
    return "ended" if "Please sign in again" in body or response.status_code == 302 else response.status_code


def mutate(client, **changes):
    session = client.session
    for key, value in changes.items():
        if value is None:
            session.pop(key, None)
        else:
            session[key] = value
    session.save()


def run_both(user, task, setup):
    """(lean verdict, session keys after lean), (django verdict, session keys after django)."""
    out = []
    for probe in (lean, django_side):
        client = Client(raise_request_exception=False)
        client.force_login(user)
        setup(client)
        verdict_ = verdict(probe(client, task))
        out.append((verdict_, SESSION_KEY in client.session))
    return out


CASES = {
    "untouched": lambda c, u: None,
    "hash missing": lambda c, u: mutate(c, **{HASH_SESSION_KEY: None}),
    "hash forged": lambda c, u: mutate(c, **{HASH_SESSION_KEY: "0" * 64}),
    "hash empty": lambda c, u: mutate(c, **{HASH_SESSION_KEY: ""}),
    "backend unknown": lambda c, u: mutate(c, **{BACKEND_SESSION_KEY: "x.y.Backend"}),
    "backend missing": lambda c, u: mutate(c, **{BACKEND_SESSION_KEY: None}),
    "user id as str": lambda c, u: mutate(c, **{SESSION_KEY: str(u.pk)}),
    "user id as str with spaces": lambda c, u: mutate(c, **{SESSION_KEY: f" {u.pk} "}),
    "user id as float str": lambda c, u: mutate(c, **{SESSION_KEY: f"{u.pk}.0"}),
}


@pytest.mark.parametrize("case", CASES)
def test_lean_agrees_with_django(case, user, running):
    (lean_v, lean_kept), (dj_v, dj_kept) = run_both(user, running, lambda c: CASES[case](c, user))
    assert (lean_v, lean_kept) == (dj_v, dj_kept)


def test_password_changed_agrees(user, running):
    def setup(c):
        u = get_user_model().objects.get(pk=user.pk)
        u.set_password("another passphrase 1")
        u.save()

    (lean_v, lean_kept), (dj_v, dj_kept) = run_both(user, running, setup)
    assert (lean_v, lean_kept) == (dj_v, dj_kept) == ("ended", False)


def test_inactive_user_flush_agrees_with_django(user, running):
    """Django's ModelBackend.get_user returns None for an inactive user and does NOT flush the
    session (only a hash mismatch flushes). The lean poll flushes."""

    def setup(c):
        get_user_model().objects.filter(pk=user.pk).update(is_active=False)

    result = run_both(user, running, setup)
    get_user_model().objects.filter(pk=user.pk).update(is_active=True)
    (lean_v, lean_kept), (dj_v, dj_kept) = result
    assert lean_v == dj_v == "ended"
    assert lean_kept == dj_kept


def test_session_naming_another_user_with_own_hash(user, other_user, catalog, queue_only, make_task):
    """A session whose user id was swapped to Bob's, keeping Alice's hash, must not poll Bob's task."""
    bobs = make_task(other_user, catalog)
    client = Client()
    client.force_login(user)
    mutate(client, **{SESSION_KEY: str(other_user.pk)})
    assert verdict(lean(client, bobs)) == "ended"


def test_deleted_user(user, running):
    client = Client()
    client.force_login(user)
    task_pk = running.pk
    get_user_model().objects.filter(pk=user.pk).delete()
    r = client.get(reverse("task", args=[task_pk]), headers=HTMX)
    assert verdict(r) == "ended"


def test_fallback_rotation_agrees(user, running, settings):
    old = settings.SECRET_KEY
    out = []
    for probe in (lean, django_side):
        settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = old, []
        client = Client()
        client.force_login(user)
        before = client.session.session_key
        settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "n" * 50, [old]
        v = verdict(probe(client, running))
        out.append((v, client.session.session_key != before, client.session[HASH_SESSION_KEY]))
    assert out[0] == out[1]


def test_inactive_user_who_was_a_guest_keeps_the_guest_scope_like_other_views(
    user, other_user, catalog, queue_only, make_task
):
    """Bob entered Alice's pass as a guest, then signed in (login keeps the guest's keys), and is
    then disabled: Django's views now see him as the guest again; the lean poll of one of his own
    (account) tasks flushes the whole session, guest included."""
    from decimal import Decimal

    demo = create_pass(user, "p", list(catalog), Decimal("5"), 24)
    link = reverse("demo", args=[pass_token(demo)])
    bob = Client()
    enter_demo(bob, link)
    bob.force_login(other_user)
    bobs = make_task(other_user, catalog)
    get_user_model().objects.filter(pk=other_user.pk).update(is_active=False)
    r = bob.get(reverse("task", args=[bobs.pk]), headers=HTMX)
    assert verdict(r) == "ended"
    assert "demo_pass" in bob.session, "the lean poll flushed the guest's keys too"


@pytest.mark.parametrize("state", ["queued", "processing", "succeeded", "failed", "cancelled"])
def test_the_poll_never_loads_request_user(state, user, catalog, queue_only, make_task, monkeypatch):
    from django.contrib import auth
    from django.contrib.auth import middleware

    from playground.generations.lifecycle import transition

    task = make_task(user, catalog)
    if state != "queued":
        transition(task.pk, "processing", attempts=1)
    if state == "succeeded":
        transition(task.pk, "succeeded", output={}, cost_actual=0)
    elif state == "failed":
        transition(task.pk, "failed", error={"message": "x"}, cost_actual=0)
    elif state == "cancelled":
        transition(task.pk, "cancelled", cost_actual=0)
    calls = []
    real = auth.get_user
    monkeypatch.setattr(middleware.auth, "get_user", lambda r: calls.append(1) or real(r))
    client = Client()
    client.force_login(user)
    r = lean(client, task)
    assert r.status_code in (200, 286)
    assert calls == []
    client.get(reverse("task", args=[task.pk]), headers={**HTMX, "If-None-Match": r.get("ETag", "")})
    assert calls == []
    django_side(client, task)
    assert calls, "the probe's patch works: the thumbnail loads request.user"
