"""Guests on one demo pass are apart: each sees, cancels, downloads and re-runs only their own tasks;
the pass's owner sees all of them; a guest coming back with the same browser finds their results."""

import pytest
from django.test import Client
from django.urls import reverse

from playground.access.passes import create_pass, pass_token
from playground.catalog.schema_forms import as_form_data
from playground.generations.models import Task

from .helpers import SEED, enter_demo, seed_input

PLAY = reverse("play", args=[SEED])


@pytest.fixture
def link(user, catalog):
    demo = create_pass(user, "Team demo", [SEED], spend_cap=5, hours=2)
    return reverse("demo", args=[pass_token(demo)])


def new_guest(link):
    browser = Client()
    enter_demo(browser, link)
    return browser


@pytest.fixture
def generate(catalog, django_capture_on_commit_callbacks):
    def generate(browser, prompt):
        with django_capture_on_commit_callbacks(execute=True):
            response = browser.post(PLAY, as_form_data(catalog[SEED], seed_input(prompt=prompt)))
        assert response.status_code == 302, response.content.decode()[:500]
        return Task.objects.get(input__prompt=prompt)

    return generate


def test_a_guest_cannot_reach_another_guests_task_by_any_url(link, generate):
    first, second = new_guest(link), new_guest(link)
    mine = generate(first, "guest one's fox")
    name = mine.output["images"][0]["file"].rsplit("/", 1)[-1]
    assert first.get(reverse("task", args=[mine.pk])).status_code == 200
    for url in (
        reverse("task", args=[mine.pk]),
        reverse("task-zip", args=[mine.pk]),
        reverse("task-thumb", args=[mine.pk]),
        PLAY + f"?from={mine.pk}",
    ):
        assert second.get(url).status_code == 404, url
    assert second.post(reverse("task-cancel", args=[mine.pk])).status_code == 404
    assert second.get(reverse("task-file", args=[mine.pk, name])).status_code == 404
    assert "guest one" not in second.get(PLAY).content.decode()  # not shown as "the latest task" either


def test_the_owner_sees_every_guests_task(link, generate, client, user):
    generate(new_guest(link), "from guest one")
    generate(new_guest(link), "from guest two")
    client.force_login(user)
    html = client.get(reverse("history")).content.decode()
    assert "from guest one" in html and "from guest two" in html
    assert html.count("demo: Team demo") == 2
    for task in Task.objects.all():
        assert client.get(reverse("task", args=[task.pk])).status_code == 200


def test_a_guest_coming_back_with_the_same_browser_finds_their_results(link, generate):
    guest = new_guest(link)
    task = generate(guest, "still mine")
    guest.get(link)  # opens the link again, later
    html = guest.get(PLAY).content.decode()
    assert f'id="strip-{task.pk}"' in html
    assert guest.get(reverse("task", args=[task.pk])).status_code == 200


def test_a_guest_sees_no_snippet_that_needs_a_key(link, generate):
    guest = new_guest(link)
    task = generate(guest, "no key here")
    html = guest.get(reverse("task", args=[task.pk])).content.decode()
    assert "Authorization: Bearer" not in html and "Copy as curl" not in html


def htmx_press(browser, catalog, token, capture, **overrides):
    data = {**as_form_data(catalog[SEED], seed_input(**overrides)), "form_token": token}
    with capture(execute=True):
        return browser.post(PLAY, data, headers={"HX-Request": "true"})


def test_a_guest_pressing_with_a_token_another_guest_spent_gets_a_task_of_their_own(
    link, catalog, django_capture_on_commit_callbacks
):
    """Every guest's task belongs to the pass's owner, whose idempotency keys the form tokens are:
    each guest's tokens must still be their own, or guest B holding guest A's token would be
    answered with A's task."""
    first, second = new_guest(link), new_guest(link)
    htmx_press(first, catalog, "shared-token-1", django_capture_on_commit_callbacks, prompt="same")
    capture = django_capture_on_commit_callbacks
    response = htmx_press(second, catalog, "shared-token-1", capture, prompt="same")
    assert response.status_code == 200
    assert Task.objects.count() == 2
    mine = Task.objects.exclude(pk=Task.objects.order_by("created_at").first().pk).get()
    assert response["HX-Push-Url"] == reverse("task", args=[mine.pk])

    # Without htmx: never a redirect to the other guest's task.
    data = {**as_form_data(catalog[SEED], seed_input(prompt="same")), "form_token": "shared-token-1"}
    with django_capture_on_commit_callbacks(execute=True):
        plain = Client()
        plain.get(link)
        answer = plain.post(PLAY, data)
    earlier = Task.objects.order_by("created_at")[:2]
    assert answer["Location"] not in {reverse("task", args=[t.pk]) for t in earlier}


def test_a_guest_holding_another_guests_etag_gets_no_304_for_their_running_task(
    link, user, catalog, queue_only, django_capture_on_commit_callbacks
):
    """The unchanged-poll shortcut (one raw statement, `presenters.task_stamp`) keeps the scope:
    only the task's own guest gets its 304; anyone else, whatever ETag they send, is told the task
    is out of reach."""
    from playground.generations.lifecycle import transition

    first, second = new_guest(link), new_guest(link)
    with django_capture_on_commit_callbacks(execute=True):
        first.post(PLAY, as_form_data(catalog[SEED], seed_input(prompt="guest one's lynx")))
    task = Task.objects.get()
    transition(task.pk, "processing", attempts=1)
    url, htmx = reverse("task", args=[task.pk]), {"HX-Request": "true"}
    etag = first.get(url, headers=htmx)["ETag"]
    assert first.get(url, headers={**htmx, "If-None-Match": etag}).status_code == 304
    for other, tag in ((second, etag), (second, "*"), (Client(), etag)):
        answer = other.get(url, headers={**htmx, "If-None-Match": tag})
        assert answer.status_code == 286 and "lynx" not in answer.content.decode()
    user_client = Client()
    user_client.force_login(user)  # the pass's owner sees the task: their own 304 with the same ETag
    assert user_client.get(url, headers={**htmx, "If-None-Match": etag}).status_code == 304
