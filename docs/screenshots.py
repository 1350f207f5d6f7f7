"""Take the README's screenshots from a running playground.

    make run                     # in one terminal (or any running instance)
    .venv/bin/python docs/screenshots.py http://127.0.0.1:8000 USERNAME PASSWORD

It generates two tasks and saves docs/{playground,task,history}-{desktop,phone}.png.
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
        task_url = None
        for prompt, size, n in (
            ("Moonlit bamboo path, mist between the stems", "16:9", "2"),
            ("A red fox crossing fresh snow at dawn", "4:5", "3"),
        ):
            page.goto("/play/gemini-3-pro-image-preview-official")
            page.fill("textarea[name=prompt]", prompt)
            page.select_option("select[name=size]", size)
            page.fill("input[name=n]", n)
            page.click("button.generate")
            page.wait_for_url("**/tasks/task_*")
            page.wait_for_selector("#task-status .badge[data-status=succeeded]", timeout=60_000)
            task_url = page.url
        for name, viewport in SIZES.items():
            page.set_viewport_size(viewport)
            page.goto("/play/gemini-3-pro-image-preview-official")
            page.locator("details.advanced > summary").click()
            page.screenshot(path=HERE / f"playground-{name}.png", full_page=name == "phone")
            page.goto(task_url)
            page.wait_for_function("[...document.querySelectorAll('.gallery img')].every(i => i.complete)")
            page.screenshot(path=HERE / f"task-{name}.png", full_page=True)
            page.goto("/history")
            page.wait_for_function("[...document.querySelectorAll('td.thumb img')].every(i => i.complete)")
            page.screenshot(path=HERE / f"history-{name}.png", full_page=True)
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
