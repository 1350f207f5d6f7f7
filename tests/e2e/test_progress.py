"""Live progress in a real browser: a queued task's panel says where it stands in line, and
counts down as the tasks ahead start; a running task's panel fills a determinate progress bar as
the local engine renders its images, then shows them."""

import time

import pytest

from ..conftest import WORKER

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SEED_PATH = "/play/gemini-3-pro-image-preview-official"
PANEL_PROGRESS = "#task-status progress"


@pytest.fixture
def worker(spawn):
    """One worker whose local engine takes a second per image: time to watch tasks wait and run."""
    return spawn(*WORKER, PLAYGROUND_LOCAL_ENGINE_DELAY=1)


def generate(page, prompt: str, images: int) -> None:
    """Press Generate and wait for the new task's panel (its URL is pushed)."""
    page.fill("textarea[name=prompt]", prompt)
    page.fill("input[name=n]", str(images))
    before = page.url
    page.click("button.generate")
    page.wait_for_function("(before) => location.href !== before", arg=before)


def progress_values(page, until: str, timeout: float = 30.0) -> list[int]:
    """The panel's progress bar values, sampled until `until` (a selector) appears."""
    values, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline and not page.locator(until).count():
        bar = page.locator(PANEL_PROGRESS)
        value = bar.get_attribute("value", timeout=1000) if bar.count() else None
        if value is not None and (not values or values[-1] != int(value)):
            values.append(int(value))
        page.wait_for_timeout(100)
    return values


def test_a_task_waits_in_line_then_fills_its_progress_bar(page):
    page.goto(SEED_PATH)
    generate(page, "A lighthouse in a storm", 4)
    running = page.get_by_role("progressbar", name="Progress")
    running.wait_for()  # the first task runs: a determinate bar, from 0
    assert page.locator(PANEL_PROGRESS).get_attribute("max") == "100"

    generate(page, "A fox in the snow", 1)
    page.locator("#task-status [data-place-in-line]", has_text="1st in line").wait_for()
    generate(page, "A harbour at dawn", 4)
    place = page.locator("#task-status [data-place-in-line]")
    place.filter(has_text="2nd in line: 1 task ahead of yours.").wait_for()
    waiting = page.get_by_role("progressbar", name="Waiting to start")
    assert waiting.count() == 1 and waiting.get_attribute("aria-describedby") == place.get_attribute("id")

    # The line moves on its own: the second task starts once the first has its four images.
    place.filter(has_text="1st in line: it starts as soon as a worker is free.").wait_for(timeout=30_000)
    running.wait_for(timeout=30_000)  # now this one runs
    values = progress_values(page, "#task-status .badge[data-status=succeeded]")
    assert values == sorted(values) and len({0, 25, 50, 75} & set(values)) >= 2, values
    assert page.locator("#task-status .gallery img").count() == 4
    assert page.locator(PANEL_PROGRESS).count() == 0 and place.count() == 0
