"""Presentation mode (/present) without a browser: what the page offers, every refusal, the plain
form post without JavaScript, the audience strip's scope, and a pass ending under a guest."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from playground.access.passes import create_pass, pass_token, revoke_pass
from playground.catalog.schema_forms import as_form_data
from playground.generations.models import Task
from playground.keys.models import DemoPass

from .helpers import SEED, enter_demo, seed_input

PRESENT = reverse("present")
PRESENT_SEED = reverse("present-model", args=[SEED])
HTMX = {"HX-Request": "true"}


@pytest.fixture
def signed_in(client, user, catalog):
    client.force_login(user)
    return client


@pytest.fixture
def demo(user, catalog):
    return create_pass(user, "Friday demo", [SEED, "gpt-image-2"], spend_cap=5, hours=2)


def guest_of(demo_pass: DemoPass) -> Client:
    browser = Client()
    enter_demo(browser, reverse("demo", args=[pass_token(demo_pass)]))
    return browser


def options(html: str) -> list[str]:
    picker = re.search(r'<select id="present-model".*?</select>', html, re.S).group(0)
    return re.findall(r'<option value="([^"]+)"', picker)


@pytest.fixture
def press(catalog, django_capture_on_commit_callbacks):
    """A press of Generate in presentation mode (htmx unless `plain`); with the immediate backend
    the task has run on return."""

    def press(browser, prompt="a fox on stage", *, plain=False, url=PRESENT_SEED, **overrides):
        data = {
            **as_form_data(catalog[SEED], seed_input(prompt=prompt, **overrides)),
            "form_token": "tok-12345678",
        }
        with django_capture_on_commit_callbacks(execute=True):
            return browser.post(url, data, headers={} if plain else HTMX)

    return press


# --- The page ------------------------------------------------------------------------------------


def test_it_needs_a_signed_in_person_or_a_guest(client, catalog):
    for url in (PRESENT, PRESENT_SEED):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_it_shows_a_large_prompt_and_generate_without_navigation_keys_or_costs(signed_in, user):
    user.is_staff = user.is_superuser = True
    user.save()
    html = signed_in.get(PRESENT).content.decode()
    assert 'aria-label="Main"' not in html and "Sign out" not in html
    assert "/admin/" not in html and "est. $" not in html and "/usage" not in html
    assert 'data-present-prompt=""' in html and 'name="prompt"' in html
    assert re.search(r'<link rel="stylesheet" href="/static/css/present\.css', html)
    assert re.search(r'<script src="/static/js/present\.js" defer>', html)
    # Esc and Leave go back to this model's playground; the other fields are in the drawer.
    assert f'data-leave="{reverse("play", args=[SEED])}"' in html
    drawer = html[html.index('<details class="drawer"') :]
    assert 'name="size"' in drawer and 'name="resolution"' in drawer and 'name="prompt"' not in drawer


def test_the_playground_links_to_presentation_mode(signed_in):
    html = signed_in.get(reverse("play", args=["gpt-image-2"])).content.decode()
    assert f'href="{reverse("present-model", args=["gpt-image-2"])}"' in html


def test_the_picker_offers_every_model_or_the_chosen_few(signed_in, catalog):
    assert set(options(signed_in.get(PRESENT).content.decode())) == set(catalog)
    response = signed_in.get(PRESENT, {"models": "gpt-image-2,kling-v3"})
    html = response.content.decode()
    assert options(html) == ["gpt-image-2", "kling-v3"]
    assert 'action="/present/gpt-image-2?models=gpt-image-2%2Ckling-v3"' in html  # the choice is kept
    # The picker without JavaScript: /present?model=… opens that model, the choice kept.
    picked = signed_in.get(PRESENT, {"model": "kling-v3", "models": "gpt-image-2,kling-v3"})
    assert picked.status_code == 302
    assert (
        picked["Location"] == reverse("present-model", args=["kling-v3"]) + "?models=gpt-image-2%2Ckling-v3"
    )


@pytest.mark.parametrize(
    ("url", "named"),
    [
        (reverse("present-model", args=["no-such-model"]), "no-such-model"),
        (PRESENT + "?models=gpt-image-2,no-such-model", "no-such-model"),
        (PRESENT + "?model=no-such-model", "no-such-model"),
        (PRESENT + "?model=%3Cscript%3Ealert(1)%3C/script%3E", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ],
)
def test_an_unknown_model_is_a_404_that_names_it(signed_in, url, named):
    response = signed_in.get(url)
    html = response.content.decode()
    assert response.status_code == 404
    assert f"There is no model “{named}” here." in html
    assert "<script>alert" not in html
    assert f'href="{reverse("present-model", args=["gpt-image-2"])}"' in html  # what can be presented


def test_too_many_chosen_models_are_refused_plainly(signed_in, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        response = signed_in.get(PRESENT, {"models": ",".join(f"m{i}" for i in range(5000))})
    assert response.status_code == 400 and "Choose at most 30 models" in response.content.decode()


def test_a_submit_to_an_unknown_model_makes_nothing(signed_in, press):
    response = press(signed_in, url=reverse("present-model", args=["no-such-model"]))
    assert response.status_code == 404 and not Task.objects.exists()


# --- Submitting: the same submit as the playground ---------------------------------------------------


def test_an_htmx_submit_answers_the_panel_and_the_strip_item_and_keeps_the_address(signed_in, press):
    response = press(signed_in)
    task = Task.objects.get()
    html = response.content.decode()
    assert response.status_code == 200 and "HX-Push-Url" not in response
    assert html.lstrip().startswith(f'<section id="task-status" class="panel" data-task="{task.pk}"')
    assert task.source == "web" and task.input == seed_input(prompt="a fox on stage")
    assert 'hx-swap-oob="afterbegin:#visit-strip"' in html
    assert f'href="{PRESENT}?task={task.pk}"' in html and 'hx-push-url="false"' in html
    assert 'id="form-token" hx-swap-oob="true"' in html
    assert 'id="cost"' not in html  # no price in presentation mode


def test_the_same_press_resent_makes_one_task(signed_in, press):
    press(signed_in)
    press(signed_in)  # the same form token and input: a double press
    assert Task.objects.count() == 1


def test_without_javascript_a_post_leads_to_a_result_page_that_refreshes_until_the_task_ends(
    signed_in, press, queue_only
):
    response = press(signed_in, plain=True, url=PRESENT_SEED + "?models=gpt-image-2," + SEED)
    task = Task.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{PRESENT_SEED}?models=gpt-image-2%2C{SEED}&task={task.pk}"
    page = signed_in.get(response["Location"]).content.decode()
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page
    assert f'data-task="{task.pk}"' in page

    from playground.generations.jobs import run_task

    run_task.call(task.pk)
    page = signed_in.get(response["Location"]).content.decode()
    assert 'http-equiv="refresh"' not in page
    assert re.search(r'<div class="gallery">\s*<figure>\s*<a href="[^"]+/files/' + task.pk, page)


def test_the_page_shows_this_visits_latest_result_and_its_strip(signed_in, press):
    press(signed_in, "first take")
    press(signed_in, "second take", size="16:9")
    first, second = Task.objects.order_by("created_at")
    html = signed_in.get(PRESENT).content.decode()
    assert f'data-task="{second.pk}"' in html
    strip = html[html.index('id="visit-strip"') :]
    assert strip.index(f"strip-{second.pk}") < strip.index(f"strip-{first.pk}")
    assert f'data-task="{first.pk}"' in signed_in.get(PRESENT, {"task": first.pk}).content.decode()


def test_a_task_out_of_reach_is_a_404(signed_in, press, other_user):
    stranger = Client()
    stranger.force_login(other_user)
    press(stranger, "not yours")
    task = Task.objects.get()
    assert signed_in.get(PRESENT, {"task": task.pk}).status_code == 404
    assert signed_in.get(PRESENT, {"task": "task_nope"}).status_code == 404


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"prompt": ""}, "prompt", "This field is required."),
        ({"n": "lots"}, "n", "Enter a whole number."),
        ({"n": "99"}, "n", "less than or equal to 4"),
        ({"size": "7:3"}, "size", "Must be one of: auto, 1:1"),
    ],
)
def test_bad_input_is_named_beside_its_field(signed_in, catalog, changes, field, message):
    data = {**as_form_data(catalog[SEED], seed_input()), **changes}
    plain = signed_in.post(PRESENT_SEED, data)
    assert plain.status_code == 422 and not Task.objects.exists()
    html = plain.content.decode()
    errors = re.search(rf'<div id="field-{field}-errors" data-form-error>(.*?)</div>', html, re.S)
    assert errors and message in errors.group(1)
    if field != "prompt":  # the field is in the drawer, which opens by itself
        assert '<details class="drawer" open>' in html
    htmx = signed_in.post(PRESENT_SEED, data, headers=HTMX)
    assert htmx.status_code == 200 and htmx["HX-Retarget"] == "#run-form"
    assert htmx.content.decode().lstrip().startswith('<form id="run-form" class="present-form"')
    assert f'id="field-{field}-errors"' in htmx.content.decode()


def test_a_strip_item_polled_in_presentation_mode_keeps_its_links_there(signed_in, press, queue_only):
    press(signed_in)
    task = Task.objects.get()
    html = signed_in.get(reverse("task-thumb", args=[task.pk]) + "?present", headers=HTMX).content.decode()
    assert f'href="{PRESENT}?task={task.pk}"' in html and "/thumb?present" in html
    html = signed_in.get(reverse("task-thumb", args=[task.pk]), headers=HTMX).content.decode()
    assert f'href="{reverse("task", args=[task.pk])}"' in html  # the playground's own stays as it was


# --- Guests ----------------------------------------------------------------------------------------------


def test_a_guest_presents_the_passs_models_and_its_qr_code(demo):
    guest = guest_of(demo)
    html = guest.get(PRESENT).content.decode()
    assert sorted(options(html)) == sorted([SEED, "gpt-image-2"])
    assert "Demo: Friday demo" in html
    assert f"<code data-join-url>http://testserver/demo/{pass_token(demo)}</code>" in html
    assert 'class="qr-code"' in html
    assert 'id="show-audience"' not in html  # the audience's results are the pass owner's to show


@pytest.mark.parametrize(
    "url",
    [
        reverse("present-model", args=["kling-v3"]),
        PRESENT + "?models=kling-v3",
        PRESENT + f"?models={SEED},kling-v3",
        PRESENT + "?model=kling-v3",
    ],
)
def test_a_guest_asking_for_a_model_outside_the_pass_is_refused_clearly(demo, url):
    response = guest_of(demo).get(url)
    html = response.content.decode()
    assert response.status_code == 403
    assert "The demo pass “Friday demo” does not include Kling V3." in html
    assert f'href="{PRESENT_SEED}"' in html  # and what it does include


def test_a_guest_cannot_submit_to_a_model_outside_the_pass(demo, press):
    response = press(guest_of(demo), url=reverse("present-model", args=["kling-v3"]))
    assert response.status_code == 403 and not Task.objects.exists()


def test_a_guest_generates_in_presentation_mode(demo, press):
    guest = guest_of(demo)
    response = press(guest, "from the third row")
    task = Task.objects.get()
    assert response.status_code == 200
    assert task.demo_pass_id == demo.pk and task.guest and task.source == "demo"


@pytest.mark.parametrize("ending", ["revoked", "expired"])
def test_a_pass_that_ends_ends_the_guests_presentation_cleanly(demo, press, ending):
    guest = guest_of(demo)
    press(guest)
    task = Task.objects.get()
    if ending == "revoked":
        revoke_pass(demo)
        message = "This demo pass was revoked by its owner."
    else:
        DemoPass.objects.filter(pk=demo.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
        message = "This demo pass has expired."
    page = guest.get(PRESENT)
    assert page.status_code == 403 and message in page.content.decode()
    # Open in the room: the next poll of the big result, or the next press, says so and stops.
    for answer in (
        guest.get(reverse("task", args=[task.pk]), headers=HTMX),
        press(guest, "one more"),
    ):
        assert answer.status_code == 286
        assert answer["HX-Retarget"] == "#task-status"
        assert message in answer.content.decode()
    assert Task.objects.count() == 1


# --- Letting the room join: the QR code and the audience strip --------------------------------------


def test_the_presenter_sees_their_newest_active_pass_as_a_qr_code(signed_in, user, demo):
    revoked = create_pass(user, "Old demo", [SEED], spend_cap=5, hours=2)
    revoke_pass(revoked)
    other = create_pass(user, "Lunch demo", [SEED], spend_cap=5, hours=2)
    html = signed_in.get(PRESENT).content.decode()
    assert f"<code data-join-url>http://testserver/demo/{pass_token(other)}</code>" in html
    assert f'href="{PRESENT}?pass={demo.pk}"' in html and "Old demo" not in html
    html = signed_in.get(PRESENT, {"pass": demo.pk}).content.decode()
    assert f"<code data-join-url>http://testserver/demo/{pass_token(demo)}</code>" in html
    assert f'data-audience-url="{reverse("present-audience", args=[demo.pk])}"' in html


def test_another_persons_pass_is_never_shown(signed_in, other_user, catalog):
    theirs = create_pass(other_user, "Their demo", [SEED], spend_cap=5, hours=2)
    html = signed_in.get(PRESENT, {"pass": theirs.pk, "audience": "1"}).content.decode()
    assert pass_token(theirs) not in html and "Their demo" not in html
    assert "not one of your active demo passes" in html
    assert 'id="audience-strip" class="strip-group audience-strip" hx-disinherit' in html  # nothing polls


def test_the_qr_code_is_the_passs_link_on_the_public_address(signed_in, demo, settings):
    settings.PLAYGROUND_PUBLIC_URL = "https://play.example.com"
    html = signed_in.get(PRESENT).content.decode()
    assert f"<code data-join-url>https://play.example.com/demo/{pass_token(demo)}</code>" in html
    from playground.web.join import qr_svg

    assert qr_svg(f"https://play.example.com/demo/{pass_token(demo)}", label="x").split(">", 1)[1] in html


def test_the_audience_strip_shows_only_that_passs_tasks_newest_first(signed_in, user, demo, press):
    other_pass = create_pass(user, "Other room", [SEED], spend_cap=5, hours=2)
    press(guest_of(demo), "front row")
    press(guest_of(demo), "back row")
    press(guest_of(other_pass), "another room")
    press(signed_in, "the presenter's own")
    front, back = (Task.objects.get(input__prompt=p) for p in ("front row", "back row"))
    elsewhere = Task.objects.get(input__prompt="another room")
    own = Task.objects.get(input__prompt="the presenter's own")

    url = reverse("present-audience", args=[demo.pk])
    response = signed_in.get(url, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.index(f"strip-{back.pk}") < html.index(f"strip-{front.pk}")
    assert elsewhere.pk not in html and own.pk not in html
    assert 'hx-trigger="every 3s"' in html and "audience-item" in html
    assert f'href="{PRESENT}?task={back.pk}"' in html
    # Polled: nothing new is a 304; a new result is not.
    etag = response["ETag"]
    assert signed_in.get(url, headers={**HTMX, "If-None-Match": etag}).status_code == 304
    press(guest_of(demo), "late arrival")
    fresh = signed_in.get(url, headers={**HTMX, "If-None-Match": etag})
    assert fresh.status_code == 200 and "late arrival" in fresh.content.decode()

    # The page with the switch on shows them in the strip at once.
    page = signed_in.get(PRESENT, {"pass": demo.pk, "audience": "1"}).content.decode()
    assert f"strip-{back.pk}" in page and 'id="show-audience"' in page and "checked" in page
    # The presenter may open an audience result in the big panel (it is theirs to see).
    assert signed_in.get(reverse("task", args=[back.pk]), headers=HTMX).status_code in (200, 286)


def test_the_audience_strip_is_the_pass_owners_alone(demo, other_user, press, client):
    press(guest_of(demo), "front row")
    url = reverse("present-audience", args=[demo.pk])
    assert guest_of(demo).get(url, headers=HTMX).status_code == 404  # even a guest of that pass
    stranger = Client()
    stranger.force_login(other_user)
    assert stranger.get(url, headers=HTMX).status_code == 404
    assert stranger.get(reverse("present-audience", args=[demo.pk + 1000])).status_code == 404
    assert client.get(url)["Location"].startswith("/accounts/login/")
