"""Generating again and again on one page: every press a new task, a double press one task, stale
errors gone after a success, this visit's results in a strip, and an estimate that is the charge."""

import re

import pytest
from django.urls import reverse

from playground.catalog.schema_forms import as_form_data
from playground.generations.models import Task

from .helpers import SEED, seed_input

PLAY = reverse("play", args=[SEED])
HTMX = {"HX-Request": "true"}


@pytest.fixture
def signed_in(client, user, catalog, django_capture_on_commit_callbacks):
    """A signed-in browser whose submits run their task (the immediate backend) on commit."""
    client.force_login(user)
    post = client.post

    def post_and_run(*args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return post(*args, **kwargs)

    client.post = post_and_run
    return client


def form_token(html: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', html).group(1)


def press_generate(client, catalog, token, **overrides):
    data = {**as_form_data(catalog[SEED], seed_input(**overrides)), "form_token": token}
    return client.post(PLAY, data, headers=HTMX)


def test_each_press_with_the_token_the_last_answer_gave_is_a_new_task(signed_in, catalog):
    token = form_token(signed_in.get(PLAY).content.decode())
    first = press_generate(signed_in, catalog, token, prompt="a fox")
    second = press_generate(signed_in, catalog, form_token(first.content.decode()), prompt="a wolf")
    third = press_generate(signed_in, catalog, form_token(second.content.decode()), prompt="a wolf")
    assert Task.objects.count() == 3
    assert [t.input["prompt"] for t in Task.objects.order_by("created_at")] == ["a fox", "a wolf", "a wolf"]
    for response in (first, second, third):
        assert response.status_code == 200
        assert "already used" not in response.content.decode()
    # Each answer hands the form a token of its own, out of band.
    assert len({token, form_token(first.content.decode()), form_token(second.content.decode())}) == 3
    assert 'id="form-token" hx-swap-oob="true"' in first.content.decode()


def test_a_resent_press_replays_its_task(signed_in, catalog):
    token = form_token(signed_in.get(PLAY).content.decode())
    press_generate(signed_in, catalog, token, prompt="once")
    again = press_generate(signed_in, catalog, token, prompt="once")
    assert Task.objects.count() == 1
    assert again["HX-Push-Url"] == reverse("task", args=[Task.objects.get().pk])


def test_a_spent_token_with_changed_input_makes_a_new_task_not_an_error(signed_in, catalog):
    """The old form kept its token (say, the answer was lost): the person changed the prompt and
    pressed again, which is a new task."""
    token = form_token(signed_in.get(PLAY).content.decode())
    press_generate(signed_in, catalog, token, prompt="before")
    response = press_generate(signed_in, catalog, token, prompt="after")
    assert response.status_code == 200
    assert sorted(t.input["prompt"] for t in Task.objects.all()) == ["after", "before"]
    assert "Idempotency" not in response.content.decode()


def test_a_success_clears_the_earlier_notices_and_tells_the_page(signed_in, catalog):
    response = press_generate(signed_in, catalog, "token-12345678")
    html = response.content.decode()
    assert '<div id="form-notices" hx-swap-oob="true"></div>' in html
    assert "playground:submitted" in response["HX-Trigger-After-Settle"]


def test_the_visit_strip_lists_this_visits_tasks_newest_first(signed_in, catalog, user, make_task):
    earlier = make_task(user, catalog, prompt="from another visit")
    first = press_generate(signed_in, catalog, "token-aaaaaaaa", prompt="first")
    assert 'hx-swap-oob="afterbegin:#visit-strip"' in first.content.decode()
    press_generate(signed_in, catalog, "token-bbbbbbbb", prompt="second")
    html = signed_in.get(PLAY).content.decode()
    strip = html[html.index('id="visit-strip"') :].split("</section>")[0]
    ids = re.findall(r'id="strip-(task_\w+)"', strip)
    tasks = {t.input["prompt"]: t.pk for t in Task.objects.all()}
    assert ids == [tasks["second"], tasks["first"]]
    assert earlier.pk not in strip


def test_a_finished_strip_item_shows_its_image_and_stops_polling(signed_in, catalog):
    press_generate(signed_in, catalog, "token-cccccccc", prompt="thumb")
    task = Task.objects.get()
    response = signed_in.get(reverse("task-thumb", args=[task.pk]), headers=HTMX)
    assert response.status_code == 286
    assert "<img src=" in response.content.decode() and "every 2s" not in response.content.decode()


def test_a_refused_form_prices_what_the_person_typed(signed_in, catalog):
    data = {
        **as_form_data(catalog[SEED], seed_input(n=3, resolution="4K")),
        "mask_url": "https://x.test/m.png",
    }
    response = signed_in.post(PLAY, data, headers=HTMX)
    assert response["HX-Retarget"] == "#run-form"
    assert "· est. $0.648</span>" in response.content.decode()  # 3 x 4K, not the defaults


def test_the_estimate_is_what_the_task_is_charged_and_the_button_says_so_after(signed_in, catalog):
    shown = signed_in.get(reverse("estimate", args=[SEED]), {"n": "2", "resolution": "4K"}).content.decode()
    response = press_generate(signed_in, catalog, "token-dddddddd", n=2, resolution="4K")
    task = Task.objects.get()
    assert f"est. ${task.cost_estimate.normalize():f}</span>" in shown
    assert task.cost_actual == task.cost_estimate
    button = r'<span id="cost"[^>]*hx-swap-oob="true">· est. \$0.432</span>'
    assert re.search(button, response.content.decode())


def test_only_the_priced_fields_reprice_the_button(signed_in):
    html = signed_in.get(PLAY).content.decode()
    assert re.search(r'<select name="resolution" class="priced"', html)
    assert re.search(r'<input type="number" name="n"[^>]*class="priced"', html)
    assert not re.search(r'<select name="size" class="priced"', html)
    assert 'hx-include=".priced"' in html


def test_a_changed_press_with_a_spent_token_resent_is_still_one_task(signed_in, catalog):
    """A spent token with a changed input is a new task; that press resent (a double click, the
    back button) replays it."""
    press_generate(signed_in, catalog, "token-spent-1", prompt="before")
    first = press_generate(signed_in, catalog, "token-spent-1", prompt="after")
    again = press_generate(signed_in, catalog, "token-spent-1", prompt="after")
    assert sorted(t.input["prompt"] for t in Task.objects.all()) == ["after", "before"]
    assert first["HX-Push-Url"] == again["HX-Push-Url"]


def test_the_estimate_never_prices_a_value_the_model_refuses(signed_in):
    """A value the form keeps on screen but the model refuses (not offered, out of range) has no
    price: the task would be refused, not charged."""
    for duration in ("-10", "0", "10000"):
        html = signed_in.get(reverse("estimate", args=["kling-v3"]), {"duration": duration}, headers=HTMX)
        assert "· est. —</span>" in html.content.decode(), duration
    html = signed_in.get(
        reverse("estimate", args=["kling-v3"]), {"duration": "10", "mode": "pro"}, headers=HTMX
    )
    assert "· est. $0.2117</span>" in html.content.decode()  # 10 s x 0.01512 x 1.4
