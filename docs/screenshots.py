"""Take the README's screenshots from a running playground.

    make run                     # in one terminal (or any running instance)
    .venv/bin/python docs/screenshots.py http://127.0.0.1:8000 USERNAME PASSWORD

It generates three tasks on one page and saves docs/{playground,task,history,usage}-{desktop,phone}.png,
then shares the last task and saves its public page as docs/share-page.png.
"""

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SIZES = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
HERE = Path(__file__).resolve().parent


def all_loaded(page, selector: str) -> None:
    """Wait until every image matching `selector` has loaded (no string eval: the CSP forbids it)."""
    for image in page.locator(selector).all():
        image.evaluate("image => image.complete || new Promise(done => image.addEventListener('load', done))")


def main(base: str, username: str, password: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        context = browser.new_context(base_url=base, viewport=SIZES["desktop"], device_scale_factor=1)
        page = context.new_page()
        page.goto("/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_url("**/play/**")
        # Three takes on one page, as a person iterates: they stay in the visit strip.
        page.goto("/play/gemini-3-pro-image-preview-official")
        for prompt, size, n in (
            ("Moonlit bamboo path, mist between the stems", "16:9", "2"),
            ("A red fox crossing fresh snow at dawn", "4:5", "3"),
            ("A red fox crossing fresh snow at dusk", "4:5", "2"),
        ):
            page.fill("textarea[name=prompt]", prompt)
            page.select_option("select[name=size]", size)
            page.fill("input[name=n]", n)
            before = page.url
            page.click("button.generate")
            page.wait_for_url(lambda url, before=before: "/tasks/task_" in url and url != before)
            page.wait_for_selector("#task-status .badge[data-status=succeeded]", timeout=60_000)
        task_url = page.url
        for name, viewport in SIZES.items():  # the page as it stands after the third take
            page.set_viewport_size(viewport)
            all_loaded(page, ".gallery img, .strip img")
            page.screenshot(path=HERE / f"playground-{name}.png", full_page=name == "phone", caret="initial")
        for name, viewport in SIZES.items():
            page.set_viewport_size(viewport)
            page.goto(task_url)
            all_loaded(page, ".gallery img, .strip img")
            page.screenshot(path=HERE / f"task-{name}.png", full_page=True, caret="initial")
            page.goto("/history")
            all_loaded(page, "td.thumb img")
            page.screenshot(path=HERE / f"history-{name}.png", full_page=True, caret="initial")
            page.goto("/usage")
            page.screenshot(path=HERE / f"usage-{name}.png", full_page=True, caret="initial")
        # The task's public share page, as someone without an account sees it.
        page.set_viewport_size(SIZES["desktop"])
        page.goto(task_url)
        if page.locator("#task-share [data-share]").count():
            page.click("#task-share [data-share]")
        share_url = page.locator("#share-link").inner_text().strip()
        stranger = browser.new_context(viewport=SIZES["desktop"], device_scale_factor=1).new_page()
        stranger.goto(share_url)
        all_loaded(stranger, ".share-outputs img")
        stranger.screenshot(path=HERE / "share-page.png", full_page=True)
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
