"""Presentation mode in a real browser: a presenter at 1920x1080 generates with Enter, walks the strip
with the arrow keys, goes full screen and leaves with Esc; a guest in the room scans the QR code on a
phone, joins and prompts, and their result shows in the presenter's strip; the same page without
JavaScript, and at phone width."""

import io
import re

import pytest
import zxingcpp
from PIL import Image

from playground.access.passes import create_pass, revoke_pass
from playground.generations.models import Task

from .conftest import sign_in, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SEED = "gemini-3-pro-image-preview-official"
PROJECTOR = {"width": 1920, "height": 1080}
SUCCEEDED = "#task-status .badge[data-status=succeeded]"


def result_of(page, task_id: str):
    """The big result showing `task_id`, once it succeeded and its image loaded."""
    page.wait_for_selector(
        f"#task-status[data-task='{task_id}'] .badge[data-status=succeeded]", timeout=60_000
    )
    image = page.locator("#task-status .gallery img").first
    image.evaluate("image => image.complete || new Promise(done => image.addEventListener('load', done))")
    return image


def newest_task(prompt: str) -> Task:
    return Task.objects.filter(input__prompt=prompt).order_by("-created_at").first()


def task_made(page, prompt: str) -> str:
    """The id of the task `prompt` made, once it exists."""
    for _ in range(100):
        task = newest_task(prompt)
        if task is not None:
            return task.pk
        page.wait_for_timeout(100)
    raise AssertionError(f"no task for {prompt!r}")


def generate_with_enter(page, prompt: str) -> str:
    page.locator("[data-present-prompt]").fill(prompt)
    page.locator("[data-present-prompt]").press("Enter")
    return task_made(page, prompt)


def current_item(page) -> str:
    return page.locator(".present-strip .strip-item[aria-current]").get_attribute("id")


def test_a_presenter_generates_with_enter_walks_the_strip_and_leaves_with_esc(new_page, person, worker):
    page = new_page(**PROJECTOR)
    sign_in(page, person)
    page.goto("/present")
    assert page.locator("header.top, nav[aria-label=Main]").count() == 0  # no chrome
    assert page.locator("text=est. $").count() == 0
    prompt = page.locator("[data-present-prompt]")
    size = prompt.evaluate("field => parseFloat(getComputedStyle(field).fontSize)")
    assert size >= 28, f"the prompt is {size}px at 1920x1080"

    first = generate_with_enter(page, "A lighthouse in a storm, oil painting")
    image = result_of(page, first)
    box = image.bounding_box()
    assert box["height"] >= 0.55 * PROJECTOR["height"] and box["width"] >= 0.55 * PROJECTOR["width"], box
    assert image.evaluate("image => image.naturalWidth") > 0
    assert page.url.endswith("/present")  # the address stays presentation mode's

    # Shift+Enter is a new line, not a submit.
    prompt.fill("A red fox")
    prompt.press("Shift+Enter")
    prompt.press_sequentially("in fresh snow")
    assert prompt.input_value() == "A red fox\nin fresh snow"
    page.wait_for_timeout(300)
    assert Task.objects.count() == 1
    second = generate_with_enter(page, "A red fox in fresh snow, at dawn")
    result_of(page, second)
    assert page.locator(".present-strip .strip-item").count() == 2
    assert current_item(page) == f"strip-{second}"

    # The arrow keys walk the strip while the focus is not in a text field; in one, they move the caret.
    prompt.press("ArrowLeft")
    assert current_item(page) == f"strip-{second}"
    page.locator(".present-stage").click(position={"x": 5, "y": 5})
    page.keyboard.press("ArrowRight")
    result_of(page, first)
    assert current_item(page) == f"strip-{first}"
    page.keyboard.press("ArrowRight")  # the end of the strip: it stays
    page.keyboard.press("ArrowLeft")
    result_of(page, second)
    assert current_item(page) == f"strip-{second}"

    # F: full screen, and F (or Esc) again leaves it, staying in presentation mode.
    page.keyboard.press("f")
    wait_until(page, "document.fullscreenElement !== null")
    assert page.locator("[data-fullscreen]").get_attribute("aria-pressed") == "true"
    page.keyboard.press("f")
    wait_until(page, "document.fullscreenElement === null")
    page.locator("[data-fullscreen]").click()  # the button does the same
    wait_until(page, "document.fullscreenElement !== null")
    page.keyboard.press("Escape")  # in full screen, Esc leaves full screen only
    wait_until(page, "document.fullscreenElement === null")
    page.wait_for_timeout(700)
    assert page.url.endswith("/present")

    # Esc closes an open panel first, then leaves for this model's playground.
    page.locator("details.drawer > summary").click()
    page.keyboard.press("Escape")
    assert page.locator("details.drawer[open]").count() == 0
    page.keyboard.press("Escape")
    page.wait_for_url(f"**/play/{SEED}")
    assert page.locator("nav[aria-label=Main]").is_visible()
    assert page.locator(".strip-item").count() == 2  # the visit's results are still there


def qr_text(qr) -> str:
    """What the QR code on screen says, read from a screenshot of it as a phone's camera would."""
    image = Image.open(io.BytesIO(qr.screenshot())).convert("L")
    found = zxingcpp.read_barcodes(image)
    assert found, "the QR code could not be read"
    return found[0].text


def test_a_guest_joins_by_the_qr_code_and_their_result_shows_in_the_presenters_strip(
    new_page, person, worker, live_server
):
    demo = create_pass(person, "Friday demo", [SEED], spend_cap=5, hours=2)
    presenter = new_page(**PROJECTOR)
    sign_in(presenter, person)
    presenter.goto("/present")
    presenter.locator("details.join > summary").click()
    qr = presenter.locator(".join-body .qr-code")
    assert qr.bounding_box()["width"] >= 400  # readable from the back of the room
    url = qr_text(qr)
    assert url == presenter.locator("[data-join-url]").inner_text()
    assert re.fullmatch(re.escape(live_server.url) + r"/demo/[\w-]+:[\w-]+", url), url
    audience_polls = []
    presenter.on("request", lambda r: audience_polls.append(r.url) if "/present/audience/" in r.url else None)
    presenter.locator("#show-audience").check()
    wait_until(presenter, "location.search === '?audience=1'")  # a reload shows the same
    presenter.keyboard.press("Escape")  # closes the QR panel, stays presenting
    assert presenter.locator("details.join[open]").count() == 0 and "/present" in presenter.url

    guest = new_page(width=390, height=844)  # a phone in the room
    guest.goto(url)
    guest.get_by_role("button", name="Enter").click()
    guest.wait_for_selector("textarea[name=prompt]")
    guest.fill("textarea[name=prompt]", "A paper boat, from row nine")
    guest.click("button.generate")
    guest.wait_for_selector(SUCCEEDED, timeout=60_000)
    theirs = newest_task("A paper boat, from row nine")
    assert theirs.demo_pass_id == demo.pk

    item = presenter.locator(f"#audience-strip #strip-{theirs.pk}.audience-item")
    item.wait_for(timeout=20_000)
    item.locator("img").evaluate(
        "image => image.complete || new Promise(d => image.addEventListener('load', d))"
    )
    presenter.keyboard.press(
        "ArrowRight"
    )  # the first item of the strip: the audience's, the presenter has none
    result_of(presenter, theirs.pk)

    # Switched off, the audience's results leave the strip and nothing polls for them any more.
    presenter.locator("details.join > summary").click()
    presenter.locator("#show-audience").uncheck()
    assert presenter.locator("#audience-strip .strip-item").count() == 0
    presenter.wait_for_timeout(500)
    seen = len(audience_polls)
    assert seen >= 1
    presenter.wait_for_timeout(4_000)
    assert len(audience_polls) == seen

    # The owner revokes the pass: the guest's next press says so, in place of the result.
    revoke_pass(demo)
    guest.fill("textarea[name=prompt]", "one more")
    guest.click("button.generate")
    guest.locator("#task-status", has_text="revoked by its owner").wait_for()
    assert newest_task("one more") is None


def test_without_javascript_it_is_a_plain_large_type_page(browser, live_server, person, worker):
    context = browser.new_context(base_url=live_server.url, viewport=PROJECTOR, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(20_000)
    sign_in(page, person)
    page.goto("/present")
    size = page.locator("[data-present-prompt]").evaluate("f => parseFloat(getComputedStyle(f).fontSize)")
    assert size >= 28
    page.locator("details.drawer > summary").click()  # the drawer is a <details>: it opens without script
    page.select_option("select[name=size]", "16:9")
    page.fill("[data-present-prompt]", "A tram at night, neon")
    page.click("button.generate")
    page.wait_for_url(re.compile(r"/present/" + SEED + r"\?task=task_\w+$"))
    # The result's page refreshes itself until the task has ended.
    page.wait_for_selector(SUCCEEDED, timeout=60_000)
    assert page.locator("#task-status .gallery img").first.evaluate("i => i.naturalWidth") > 0
    assert Task.objects.get().input["size"] == "16:9"
    page.locator("a[data-leave]").click()
    page.wait_for_url(f"**/play/{SEED}")
    context.close()


def test_at_phone_width_nothing_scrolls_sideways_and_generate_is_in_reach(new_page, person, worker):
    page = new_page(width=390, height=844)
    sign_in(page, person)
    page.goto("/present")
    generate = page.locator("button.generate")
    assert generate.bounding_box()["y"] + generate.bounding_box()["height"] <= 844
    page.locator("details.join > summary").click()
    page.locator("details.drawer > summary").click()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.fill("[data-present-prompt]", "A kite over the sea")
    generate.click()
    result_of(page, task_made(page, "A kite over the sea"))
    assert page.locator("#task-status .gallery img").first.is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
