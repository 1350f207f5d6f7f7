"""Sharing a result in a real browser: the owner shares from the task page, someone with no account
and no cookies opens the link and sees the image, then the owner unshares and the link is dead."""

import re

import pytest

from playground.generations.models import Share

from .conftest import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SEED_PATH = "/play/gemini-3-pro-image-preview-official"
PROMPT = "A lighthouse in a storm, oil painting"


def generate(page, prompt: str) -> str:
    page.goto(SEED_PATH)
    page.fill("textarea[name=prompt]", prompt)
    page.click("button.generate")
    page.wait_for_url(re.compile(r"/tasks/task_\w+$"))
    task_id = page.url.rsplit("/", 1)[-1]
    page.wait_for_selector(f"#task-status:has(a[href$='{task_id}']) .badge[data-status=succeeded]")
    return task_id


def test_a_result_shared_from_its_page_opens_for_a_stranger_until_it_is_unshared(page, new_page):
    task_id = generate(page, PROMPT)
    page.locator("#task-share [data-share]").click()  # "Show the prompt and parameters" is ticked
    link = page.locator("#share-link")
    link.wait_for()
    url = link.inner_text().strip()
    assert re.fullmatch(r"http://[^/]+/s/[A-Za-z0-9_-]{32,}", url), url
    assert Share.objects.get(task_id=task_id).show_parameters

    stranger = new_page(width=1200, height=900)
    answer = stranger.goto(url)
    assert answer.status == 200
    image = stranger.locator(".share-outputs img").first
    image.wait_for()
    wait_until(stranger, "document.querySelector('.share-outputs img').naturalWidth > 0")
    assert stranger.locator("[data-prompt]").inner_text() == PROMPT
    og_image = stranger.locator("meta[property='og:image']").get_attribute("content")
    assert og_image.startswith(url + "/files/")
    assert stranger.context.cookies() == []  # no session, no CSRF cookie
    assert "carol" not in stranger.content()  # the owner's name is nowhere

    # Shared twice from the page (a second browser tab) is still one page at one URL.
    page.reload()
    assert page.locator("#share-link").inner_text().strip() == url

    page.locator("#task-share [data-unshare]").click()
    page.locator("#task-share [data-share]").wait_for()
    assert stranger.goto(url).status == 404
    assert stranger.goto(og_image).status == 404


def test_a_result_shared_without_its_parameters_shows_only_the_outputs(page, new_page):
    generate(page, PROMPT)
    page.locator("#task-share input[name=show_parameters]").uncheck()
    page.locator("#task-share [data-share]").click()
    url = page.locator("#share-link").inner_text().strip()
    assert "not the prompt or parameters" in page.locator("#task-share").inner_text()

    stranger = new_page(width=390, height=844)  # a phone
    stranger.goto(url)
    wait_until(stranger, "document.querySelector('.share-outputs img').naturalWidth > 0")
    assert PROMPT not in stranger.content()
    assert stranger.locator("[data-prompt]").count() == 0
