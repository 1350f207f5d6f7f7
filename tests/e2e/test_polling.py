"""Conditional polls of the status panel in a real browser: while the task is unchanged the browser
revalidates its copy (the server answers 304 and sends no body; htmx sees the cached 200), the panel
stays in place with its elapsed time ticking on, and the poll that sees the end (286) swaps the
result in and stops polling."""

import re

import pytest

from ..conftest import WORKER

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SEED_PATH = "/play/gemini-3-pro-image-preview-official"
POLL = re.compile(r"/tasks/task_\w+$")


@pytest.fixture
def worker(spawn):
    """A worker whose local engine takes 6 s per image: time to watch a task that is not changing."""
    return spawn(*WORKER, PLAYGROUND_LOCAL_ENGINE_DELAY=6)


def test_an_unchanged_task_is_revalidated_and_the_panel_stays_and_ticks_until_the_end(page):
    page.goto(SEED_PATH)
    page.fill("textarea[name=prompt]", "A lighthouse in a storm")
    polls = []  # (If-None-Match sent, response body bytes) of each poll

    def record(request):
        if request.method == "GET" and POLL.search(request.url):
            polls.append((request.all_headers().get("if-none-match"), request.sizes()["responseBodySize"]))

    page.on("requestfinished", record)
    page.click("button.generate")
    page.wait_for_selector("#task-status li:has-text('Rendering image 1 of 1')", state="attached")
    page.evaluate("document.getElementById('task-status').dataset.seen = 'yes'")
    clock = page.locator("#task-status [data-elapsed]")
    before, polled = float(clock.inner_text().split()[0]), len(polls)
    page.wait_for_timeout(2500)
    after = float(clock.inner_text().split()[0])
    assert after >= before + 2, (before, after)  # ticks on between polls
    unchanged = polls[polled:]
    assert len(unchanged) >= 2 and all(sent for sent, _ in unchanged), polls
    assert all(size == 0 for _, size in unchanged), polls  # 304: no body travelled
    assert page.evaluate("document.getElementById('task-status').dataset.seen") == "yes", "panel replaced"

    page.wait_for_selector("#task-status .badge[data-status=succeeded]", timeout=30_000)
    assert page.locator("#task-status .gallery img").count() == 1
    assert page.locator("#task-status [data-elapsed]").count() == 0
    seen = len(polls)
    page.wait_for_timeout(2500)
    assert len(polls) == seen, "polling went on after the task ended"
