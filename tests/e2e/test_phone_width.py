"""At phone width (360 px) no page scrolls sideways, with real content on it: a key, a demo pass,
finished image and video tasks with data-URI inputs, a failed task with a long error. Wide tables
may scroll inside their own box; the page itself may not."""

import base64
import io
import time
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings
from PIL import Image

from playground.access.passes import create_pass, pass_token
from playground.catalog.models import CatalogEntry
from playground.generations.lifecycle import transition
from playground.generations.models import Status, Task
from playground.generations.services import submit_task
from playground.keys.services import issue_key

from .conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SEED = "gemini-3-pro-image-preview-official"
PHONE = {"width": 360, "height": 780}
LONG_URL = "https://cdn.example.com/renders/" + "0123456789abcdef" * 12 + ".png"
LONG_ERROR = f"The reference image could not be downloaded from {LONG_URL}: the server answered 404."

# What sticks out of the page, for the failure message: elements whose right edge passes the
# viewport's, outermost first.
OFFENDERS = """() => [...document.querySelectorAll('body *')]
  .filter(el => el.getBoundingClientRect().right > window.innerWidth + 0.5)
  .slice(0, 5)
  .map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + [...el.classList].map(name => '.' + name).join(''))"""


def png_data_uri() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 48), "teal").save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def submit(owner, slug: str, data: dict) -> Task:
    return submit_task(owner, slug, data, request_id="req_phone", source="web").task


def failed_task(owner) -> Task:
    """A task that failed with a long message (queued where no worker takes it, then failed)."""
    with override_settings(TASKS={"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}):
        task = submit(owner, "gpt-image-2", {"prompt": "a lighthouse at dusk"})
    error = {"code": "input_unavailable", "message": LONG_ERROR}
    assert transition(task.pk, Status.FAILED, message=LONG_ERROR, error=error, cost_actual=Decimal(0))
    return task


def wait_until_finished(tasks: list[Task], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    ids = [task.pk for task in tasks]
    while Task.objects.filter(pk__in=ids, status__in=[Status.QUEUED, Status.PROCESSING]).exists():
        assert time.monotonic() < deadline, "the worker did not finish the tasks in time"
        time.sleep(0.2)
    assert set(Task.objects.filter(pk__in=ids).values_list("status", flat=True)) == {Status.SUCCEEDED}


def scrolls_sideways(page) -> list[str] | None:
    """None if the page fits its width, else what sticks out. Closed <details> are opened first
    (events, advanced fields, confirmations): their content must fit too."""
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
    if page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"):
        return None
    return page.evaluate(OFFENDERS)


def visit_all(page, pages: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Open each (path, text the page must show) and collect the pages that scroll sideways."""
    too_wide = {}
    for path, expected in pages:
        page.goto(path)
        page.wait_for_load_state("load")
        assert expected in page.locator("main").inner_text(), f"{path} did not show {expected!r}"
        if path.startswith("/play/"):
            for _ in range(2):  # repeatable rows: show a couple more
                add = page.locator("[data-repeat-add]:visible").first
                if add.count():
                    add.click()
        if (offenders := scrolls_sideways(page)) is not None:
            too_wide[path] = offenders
    return too_wide


def test_no_page_scrolls_sideways_at_phone_width(page, new_page, person, signup_open):
    issue_key(person, name="nightly-renders-for-the-marketing-site")
    demo = create_pass(person, "Friday demo for the whole design team", [SEED], Decimal(5), 24)
    reference = png_data_uri()
    fox = submit(person, SEED, {"prompt": "a fox under moonlight", "image_urls": [reference]})
    watercolour = submit(person, SEED, {"prompt": "a fox, watercolour", "image_urls": [reference] * 2})
    video = submit(
        person,
        "viduq3-pro",
        {"prompt": "waves at dawn", "aspect_ratio": "1:1", "resolution": "540p", "duration": 1},
    )
    failed = failed_task(person)
    wait_until_finished([fox, watercolour, video])

    page.set_viewport_size(PHONE)
    models = CatalogEntry.objects.filter(is_active=True).order_by("slug")
    signed_in = [
        ("/keys", "Friday demo for the whole design team"),
        (f"/tasks/{fox.pk}", "This request through the API"),
        (f"/tasks/{video.pk}", "This request through the API"),
        (f"/tasks/{failed.pk}", LONG_URL),
        ("/history", "a fox, watercolour"),
        (f"/compare?ids={fox.pk}&ids={watercolour.pk}&ids={video.pk}", "Reference images"),
        ("/usage", "Per model"),
        ("/accounts/password/", "Change password"),
        ("/no/such/page", "Page not found"),
        ("/docs/api", "/api/v1/tasks"),
        *((f"/play/{entry.slug}", entry.title) for entry in models),
        # Presentation mode: empty, with an image, with a video, refused; its QR panel shows the pass.
        ("/present", "Type a prompt and press Enter."),
        (f"/present/{SEED}?task={fox.pk}", "Succeeded"),
        (f"/present?task={video.pk}", "Succeeded"),
        ("/present/no-such-model", "There is no model “no-such-model” here."),
    ]
    too_wide = visit_all(page, signed_in)

    guest = new_page(**PHONE)  # signed out
    signed_out = [
        ("/accounts/login/", "Sign in"),
        ("/accounts/signup/", "Create an account"),
        ("/demo/not-a-real-pass-token-" + "x" * 80, "Demo unavailable"),
        (f"/demo/{pass_token(demo)}", "Friday demo for the whole design team"),  # the landing page
    ]
    too_wide |= visit_all(guest, signed_out)
    get_user_model().objects.all().delete()  # the first-account page exists only with no account
    too_wide |= visit_all(guest, [("/accounts/first/", "Create the first account")])

    assert not too_wide, f"pages that scroll sideways at 360 px: {too_wide}"


def test_on_a_phone_a_new_key_and_every_keys_actions_are_on_screen(page, person):
    """Creating a key on a phone: the one-time secret wraps inside the screen, and each key and
    pass is a card whose Disable, Delete and Revoke are within the screen's width, however long
    its name (the table used to push them off to the right)."""
    create_pass(person, "x" * 100, [SEED], Decimal(5), 24)
    page.set_viewport_size(PHONE)
    page.goto("/keys")
    page.fill("#id_name", "n" * 100)
    page.fill("#id_budget", "2.5")
    page.click("button:has-text('Create key')")
    secret = page.locator("#new-secret")
    secret.wait_for()
    assert secret.inner_text().startswith("pg_live_")

    def right_edge(locator) -> float:
        box = locator.bounding_box()
        return box["x"] + box["width"]

    assert right_edge(secret) <= PHONE["width"]
    for action in ("button:has-text('Disable')", "summary:has-text('Delete')", "summary:has-text('Revoke')"):
        assert right_edge(page.locator(action).first) <= PHONE["width"], action
    assert scrolls_sideways(page) is None


def test_on_a_phone_a_roll_far_down_the_list_shows_its_secret_and_the_audit_log_is_cards(page, person):
    """Roll is pressed in a key's row, below the form and the other keys; the one-time secret
    appears at the top of the section, and comes into view with its Copy button focused (it used
    to appear off-screen, lost unseen at the next reload). The audit log is a card per entry, as the
    keys are, not a table scrolling sideways inside its box."""
    oldest = issue_key(person, name="oldest-app")
    for n in range(4):
        issue_key(person, name=f"app-{n}", budget=Decimal(5))
    page.set_viewport_size(PHONE)
    page.goto("/keys")
    row = page.locator("#api-keys tr", has_text="oldest-app")
    row.locator("summary", has_text="Roll").click()
    row.get_by_label("The old secret").select_option(label="for 1 hour")
    row.get_by_role("button", name="Roll now").click()
    box = page.locator(".secret-box", has_text="The old secret keeps working until")
    box.wait_for()
    wait_until(page, "document.activeElement?.matches('.secret-box [data-copy]')")
    secret = page.locator("#new-secret").bounding_box()
    assert secret["y"] >= 0 and secret["y"] + secret["height"] <= PHONE["height"]
    rolled = page.locator("#api-keys tr", has_text="oldest-app").inner_text()
    assert f"the old {oldest.key.prefix}… works until" in rolled

    audit = page.locator("#audit-log .scroll-x")
    assert "key.rolled" in audit.inner_text()
    assert audit.evaluate("box => box.scrollWidth <= box.clientWidth")
    by = page.locator("#audit-log td[data-label=By]").first.bounding_box()
    assert by["x"] + by["width"] <= PHONE["width"]
    assert scrolls_sideways(page) is None


def test_on_a_phone_the_owners_history_tells_a_guests_task_from_their_own(page, person):
    """At phone width the model and date columns go; the mark of who ran a task (a guest on a demo
    pass, the API) stays beside its prompt."""
    demo = create_pass(person, "Friday demo", [SEED], Decimal(5), 24)
    submit_task(
        person,
        SEED,
        {"prompt": "a guest's heron"},
        request_id="req_phone",
        source="demo",
        demo_pass=demo,
        guest="g1",
    )
    submit_task(person, SEED, {"prompt": "my own heron"}, request_id="req_phone2", source="web")
    page.set_viewport_size(PHONE)
    page.goto("/history")
    guest_row = page.locator("table.tasks tr", has_text="a guest's heron")
    assert guest_row.locator(".demo-badge").is_visible()
    assert "demo: Friday demo" in guest_row.inner_text()
    assert page.locator("table.tasks tr", has_text="my own heron").locator(".demo-badge").count() == 0


def test_on_a_phone_a_tasks_own_page_opens_on_its_result_and_the_playground_on_its_form(page, person):
    """The result panel is below the form at phone width: a task's page (opened from History, or a
    shared link) brings it into view, as Generate does; the playground itself starts at the top."""
    task = failed_task(person)
    page.set_viewport_size(PHONE)
    page.goto("/history")
    page.locator("table.tasks a", has_text="a lighthouse at dusk").click()
    page.wait_for_url(f"**/tasks/{task.pk}")
    page.wait_for_load_state("load")
    top = page.evaluate("document.getElementById('task-status').getBoundingClientRect().top")
    # Scrolled into view, give or take the subpixel rounding of a layout in fractional pixels.
    assert -1 < top < PHONE["height"] / 2, f"the result panel is not in view (top at {top})"
    assert page.locator("#task-status .alert").is_visible()

    page.goto(f"/play/{SEED}")
    page.wait_for_load_state("load")
    assert page.evaluate("window.scrollY") == 0
