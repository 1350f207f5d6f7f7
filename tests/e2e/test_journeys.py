"""A person's few minutes on the playground, in Chromium with the real worker: generating again and
again, two guests on one pass, re-running into another model, a phone, a failing server."""

import re
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from playground.access.passes import create_pass, pass_token
from playground.generations.models import Task

from ..helpers import wait_for
from .conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SEED = "gemini-3-pro-image-preview-official"
SEED_PATH = f"/play/{SEED}"
TASK_URL = re.compile(r"/tasks/task_\w+$")


def shown_estimate(page) -> Decimal | None:
    text = page.locator("#cost").inner_text()
    found = re.search(r"\$([0-9.]+)", text)
    return (
        Decimal(found.group(1))
        if found and "stale" not in page.locator("#cost").get_attribute("class")
        else None
    )


def generate_and_wait(page, expected_tasks: int) -> Task:
    """Press Generate, wait for this press's task to be on show and done; returns it."""
    before = page.url
    page.click("button.generate")
    try:
        page.wait_for_url(lambda url: TASK_URL.search(url) and url != before)
    except Exception:
        raise AssertionError(f"no new task; the page shows: {visible_alerts(page)}") from None
    task_id = page.url.rsplit("/", 1)[-1]
    page.wait_for_selector(f"#task-status[data-task='{task_id}'] .badge[data-status=succeeded]")
    page.locator(f"#strip-{task_id} img").wait_for()
    assert Task.objects.count() == expected_tasks
    return Task.objects.get(pk=task_id)


def visible_alerts(page) -> list[str]:
    return [a.inner_text() for a in page.locator(".alert, .error").all() if a.is_visible()]


def test_generating_three_times_on_one_page_makes_three_tasks_with_three_sets_of_images(page):
    page.goto(SEED_PATH)
    page.evaluate("window.noReload = true")
    page.fill("textarea[name=prompt]", "a red fox in the snow")
    page.fill("input[name=n]", "2")
    page.locator("#cost:not(.stale)").wait_for()
    at_press = shown_estimate(page)
    first = generate_and_wait(page, 1)
    assert at_press == first.cost_estimate == first.cost_actual == Decimal("0.2412")

    page.fill("textarea[name=prompt]", "a grey wolf in the snow")  # changed input
    second = generate_and_wait(page, 2)
    third = generate_and_wait(page, 3)  # the same input again: a new run, not the old task
    assert not visible_alerts(page)
    assert page.evaluate("window.noReload") is True, "the page reloaded"

    assert [t.input["prompt"] for t in (first, second, third)] == [
        "a red fox in the snow",
        "a grey wolf in the snow",
        "a grey wolf in the snow",
    ]
    files = [tuple(i["file"] for i in t.output["images"]) for t in (first, second, third)]
    assert len(set(files)) == 3 and all(len(f) == 2 for f in files), files
    pictures = [default_storage.open(f[0]).read() for f in files]
    assert pictures[1] != pictures[2], "the same prompt again gave the same picture: not a new take"
    assert page.locator("#task-status .gallery img").count() == 2
    # This visit's results, newest first; a click reopens one.
    strip = page.locator("#visit-strip .strip-item")
    assert [s.get_attribute("id") for s in strip.all()] == [f"strip-{t.pk}" for t in (third, second, first)]
    page.locator(f"#strip-{first.pk} a").click()
    page.wait_for_selector(f"#task-status[data-task='{first.pk}'] .gallery img")
    assert page.url.endswith(f"/tasks/{first.pk}")
    assert page.locator(f"#strip-{first.pk}[aria-current]").count() == 1


def test_a_double_click_makes_one_task(page):
    page.goto(SEED_PATH)
    page.fill("textarea[name=prompt]", "pressed twice")
    page.dblclick("button.generate")
    page.wait_for_url(TASK_URL)
    page.wait_for_selector("#task-status .badge[data-status=succeeded]")
    page.wait_for_timeout(1200)
    assert Task.objects.count() == 1


def test_a_changed_prompt_pressed_within_a_second_is_a_new_task(page):
    """The double-click guard drops only a repeat of the same form: a quick edit and press is a
    new request (the walkthrough lost two of five such presses, without a word)."""
    page.goto(SEED_PATH)
    page.fill("textarea[name=prompt]", "first idea")
    page.click("button.generate")
    page.fill("textarea[name=prompt]", "second idea")
    page.click("button.generate")
    wait_for(lambda: Task.objects.count() == 2, timeout=30)
    prompts = sorted(Task.objects.values_list("input__prompt", flat=True))
    assert prompts == ["first idea", "second idea"]


def test_a_pasted_prompt_over_the_cap_is_kept_whole_counted_and_refused_in_words(page):
    """The browser used to cut a pasted 12,000-character prompt to 10,000 without a word and run it."""
    prompt = "word " * 2400  # 12,000 characters
    page.goto(SEED_PATH)
    page.fill("textarea[name=prompt]", prompt)
    assert page.input_value("textarea[name=prompt]") == prompt
    assert page.locator(".char-count.over").inner_text() == "12,000 / 10,000 characters: 2,000 too many"
    page.click("button.generate")
    error = page.locator("#field-prompt .error")
    error.wait_for()
    assert "at most 10000 characters" in error.inner_text()
    assert page.input_value("textarea[name=prompt]") == prompt
    assert Task.objects.count() == 0


def test_a_refused_try_then_a_good_one_leaves_no_stale_error(page):
    page.goto(SEED_PATH)
    page.fill("textarea[name=prompt]", "masked")
    page.fill("input[name=n]", "3")
    page.locator("details.advanced > summary").click()
    page.locator("#field-mask_url details.paste summary").click()
    page.fill("input[name=mask_url]", "https://example.com/mask.png")
    page.click("button.generate")
    page.locator("#field-mask_url .error").wait_for()
    assert shown_estimate(page) == Decimal("0.3618")  # what was typed (3 images), not the default
    page.fill("input[name=mask_url]", "")
    generate_and_wait(page, 1)
    assert not visible_alerts(page)


def test_the_estimate_never_shows_an_answer_older_than_the_form(page):
    """The first estimate's answer is held back until after the second: it must never be shown."""
    page.goto(SEED_PATH)
    held = []

    def hold_the_first(route):
        if "n=2" in route.request.url and not held:
            held.append(route)
            page.wait_for_timeout(1500)
        route.continue_()

    page.route("**/estimate?*", hold_the_first)
    page.fill("textarea[name=prompt]", "priced as shown")
    page.fill("input[name=n]", "2")
    page.wait_for_timeout(500)
    page.fill("input[name=n]", "3")
    page.locator("#cost:not(.stale)").wait_for()
    page.wait_for_timeout(2000)
    assert shown_estimate(page) == Decimal("0.3618")
    task = generate_and_wait(page, 1)
    assert task.cost_estimate == Decimal("0.3618")


def test_rerunning_a_task_into_another_model_flags_every_value_it_does_not_accept(page):
    page.goto(SEED_PATH)
    page.fill("textarea[name=prompt]", "carried across models")
    page.select_option("select[name=size]", "4:5")
    page.select_option("select[name=resolution]", "4K")
    page.fill("input[name=n]", "3")
    task = generate_and_wait(page, 1)
    page.get_by_role("link", name="Re-run").click()
    page.wait_for_url(f"**/play/{SEED}?from={task.pk}")
    page.select_option("#model-select", "gpt-image-2")
    page.wait_for_url("**/play/gpt-image-2")
    assert page.locator("textarea[name=prompt]").input_value() == "carried across models"
    for name, value in (("size", "4:5"), ("n", "3")):
        field = page.locator(f"#field-{name}")
        assert field.locator("select, input").first.input_value() == value, name  # kept, not dropped
        assert field.locator(".error").is_visible(), f"{name} is not flagged"
    # The same resolution, in this model's spelling (4K is its 4k): carried, not flagged.
    assert page.locator("select[name=resolution]").input_value() == "4k"
    assert page.locator("#field-resolution .error").count() == 0
    with page.expect_response(lambda r: r.request.method == "POST"):
        page.click("button.generate")  # as it stands the model refuses it, beside the fields
    page.locator("#field-size .error").wait_for()
    assert Task.objects.count() == 1
    page.select_option("select[name=size]", "1:1")
    page.select_option("select[name=n]", "1")
    generate_and_wait(page, 2)
    assert not visible_alerts(page)


def test_switching_model_keeps_the_prompt_and_the_shared_fields(page, tmp_path):
    picture = tmp_path / "reference.png"
    Image.new("RGB", (40, 30), (200, 30, 30)).save(picture)
    page.goto(SEED_PATH)
    page.fill("textarea[name=prompt]", "typed before switching")
    page.select_option("select[name=size]", "16:9")
    page.locator("details.advanced > summary").click()
    page.set_input_files("input[name=image_urls__file]", str(picture))
    page.select_option("#model-select", "doubao-seedream-5-0-lite")
    page.wait_for_url("**/play/doubao-seedream-5-0-lite")
    assert page.locator("textarea[name=prompt]").input_value() == "typed before switching"
    assert page.locator("select[name=size]").input_value() == "16:9"
    notices = page.locator("#form-notices").inner_text()
    assert "The files you chose for “Reference images” were not carried over: choose them again." in notices
    # ... and beside the field itself, with the Advanced section it lives in open to show it.
    beside = page.locator("#field-image_urls .error")
    assert beside.is_visible() and "Choose these files again" in beside.inner_text()
    page.select_option("#model-select", "minimax-hailuo-02")
    page.wait_for_url("**/play/minimax-hailuo-02")
    assert page.locator("textarea[name=prompt]").input_value() == "typed before switching"
    assert "Aspect ratio: 16:9 — this model has no such field" in page.locator("#form-notices").inner_text()


def test_two_guests_on_one_pass_see_only_their_own_work_and_the_owner_sees_both(
    new_page, worker, person, live_server
):
    demo = create_pass(person, "Team demo", [SEED], spend_cap=5, hours=2)
    link = reverse("demo", args=[pass_token(demo)])
    guests = [new_page(), new_page()]
    made = []
    for number, guest in enumerate(guests, 1):
        guest.goto(link)
        guest.get_by_role("button", name="Enter").click()
        guest.fill("textarea[name=prompt]", f"guest {number}'s lighthouse")
        made.append(generate_and_wait(guest, number))
        assert "Bearer" not in guest.content() and "Copy as curl" not in guest.content()

    mine, theirs = made
    intruder = guests[1]
    assert intruder.goto(f"/tasks/{mine.pk}").status == 404
    assert intruder.goto(f"/tasks/{mine.pk}/download.zip").status == 404
    assert intruder.goto(f"{SEED_PATH}?from={mine.pk}").status == 404
    name = mine.output["images"][0]["file"].rsplit("/", 1)[-1]
    assert intruder.request.get(f"/files/{mine.pk}/{name}").status == 404
    assert intruder.request.post(f"/tasks/{mine.pk}/cancel").status in (403, 404)  # CSRF or not found
    intruder.goto(SEED_PATH)
    assert "guest 1" not in intruder.locator("main").inner_text()
    assert intruder.locator(f"#strip-{theirs.pk}").count() == 1
    assert intruder.locator(f"#strip-{mine.pk}").count() == 0

    guests[0].goto(link)  # guest 1 comes back with the same browser: their results are there
    assert "already a guest of this pass" in guests[0].content()
    guests[0].get_by_role("button", name="Enter").click()
    guests[0].wait_for_url(f"**{SEED_PATH}")
    assert guests[0].locator(f"#strip-{mine.pk}").count() == 1

    owner = new_page()
    sign_in(owner, person)
    owner.goto("/history")
    history = owner.locator("main").inner_text()
    assert "guest 1's lighthouse" in history and "guest 2's lighthouse" in history
    assert history.count("demo: Team demo") == 2


def test_on_a_phone_the_result_comes_into_view_and_nothing_scrolls_sideways(new_page, worker, person):
    phone = new_page(width=360, height=740)
    sign_in(phone, person)
    phone.goto(SEED_PATH)
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    phone.fill("textarea[name=prompt]", "on a phone")
    for takes in range(1, 9):  # a visit strip longer than the screen is wide
        generate_and_wait(phone, takes)
        top = phone.evaluate("document.getElementById('task-status').getBoundingClientRect().top")
        assert 0 <= top < 740 / 2, f"the result panel is not in view (top at {top})"
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    assert phone.evaluate("window.scrollX") == 0
    phone.reload()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360


def test_back_and_forward_bring_back_whole_pages(page):
    page.goto(SEED_PATH)
    page.fill("textarea[name=prompt]", "the first take")
    first = generate_and_wait(page, 1)
    page.fill("textarea[name=prompt]", "the second take")
    second = generate_and_wait(page, 2)
    for move, task in ((page.go_back, first), (page.go_forward, second), (page.go_back, first)):
        move()
        page.wait_for_selector(f"#task-status[data-task='{task.pk}'] .badge[data-status=succeeded]")
        assert page.locator("header.top nav").is_visible(), "the page came back without its header"
        assert page.locator("#run-form textarea[name=prompt]").is_visible(), (
            "the page came back without its form"
        )
        assert page.locator("#visit-strip .strip-item").count() == 2


def test_a_poll_that_keeps_failing_stops_with_a_retry_that_resumes(page):
    """A proxy in front answers 502 for a while: the page stops polling after a few tries and says
    so; Try again picks the task up once the server answers again, and its item in the visit's strip
    (whose polling stopped too) catches up with it instead of showing it running for ever."""
    page.goto(SEED_PATH)
    failing = {"on": True, "count": 0}

    def proxy(route):
        if failing["on"] and route.request.headers.get("hx-request"):
            failing["count"] += not route.request.url.endswith("/thumb")  # the panel's polls
            route.fulfill(status=502, body="Bad Gateway")
        else:
            route.continue_()

    page.route(re.compile(r"/tasks/task_[\w-]+(/thumb)?$"), proxy)
    page.fill("textarea[name=prompt]", "through a flaky proxy")
    page.click("button.generate")
    page.locator(".poll-stopped").wait_for()
    assert "error (502)" in page.locator(".poll-stopped").inner_text()
    seen = failing["count"]
    page.wait_for_timeout(2500)
    assert failing["count"] == seen == 3, "polling went on"
    page.locator("#visit-strip .strip-item[hx-trigger]").wait_for(state="detached", timeout=15_000)
    task_id = page.locator("#task-status").get_attribute("data-task")
    assert "status-succeeded" not in page.locator(f"#strip-{task_id}").get_attribute("class")
    failing["on"] = False
    page.get_by_role("button", name="Try again").click()
    page.wait_for_selector("#task-status .badge[data-status=succeeded]")
    assert page.locator(".poll-stopped").count() == 0
    page.locator(f"#strip-{task_id}.status-succeeded img").wait_for()
