"""Take the README's screenshots from a running playground.

    make run                     # in one terminal (or any running instance)
    .venv/bin/python docs/screenshots.py http://127.0.0.1:8000 USERNAME PASSWORD

It generates three tasks on one page and saves docs/{playground,task,history,usage}-{desktop,phone}.png,
then shares the last task and saves its public page as docs/share-page.png. Then presentation mode at
1920x1080: docs/present.png after two takes, and docs/present-qr.png with its QR panel open (it makes
a demo pass on the Keys page if the account has none active). `... PASSWORD present` takes only those.
docs/grid.png: a batch's grid after varying the aspect ratio over three values (`... PASSWORD grid`
takes only that one).
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
PROJECTOR = {"width": 1920, "height": 1080}
HERE = Path(__file__).resolve().parent


def all_loaded(page, selector: str) -> None:
    """Wait until every image matching `selector` has loaded (no string eval: the CSP forbids it)."""
    for image in page.locator(selector).all():
        image.evaluate("image => image.complete || new Promise(done => image.addEventListener('load', done))")


def sign_in(browser, base: str, username: str, password: str, viewport: dict):
    context = browser.new_context(base_url=base, viewport=viewport, device_scale_factor=1)
    page = context.new_page()
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/play/**")
    return page


def present(browser, base: str, username: str, password: str) -> None:
    """Presentation mode on a 1920x1080 screen, and its QR panel."""
    page = sign_in(browser, base, username, password, PROJECTOR)
    page.goto("/keys")
    if not page.locator("#demo-passes code.link-code").count():
        passes = page.locator("#demo-passes")
        passes.get_by_label("Name").fill("Friday demo")
        passes.get_by_label("Gemini 3 Pro Image").check()
        passes.get_by_role("button", name="Create pass").click()
        passes.locator("code.link-code").first.wait_for()
    page.goto("/present/gemini-3-pro-image-preview-official")
    for prompt, size in (
        ("A red fox crossing fresh snow at dawn", "4:5"),
        ("A lighthouse in a storm", "16:9"),
    ):
        before = page.locator(".present-strip .strip-item").count()
        page.click("details.drawer > summary")  # Settings
        page.select_option("select[name=size]", size)
        page.click("details.drawer > summary")
        page.fill("[data-present-prompt]", prompt)
        page.press("[data-present-prompt]", "Enter")
        page.locator(".present-strip .strip-item").nth(before).wait_for()
        page.wait_for_selector("#task-status .badge[data-status=succeeded]", timeout=60_000)
    page.locator("[data-present-prompt]").blur()
    all_loaded(page, "#task-status img, .present-strip img")
    page.screenshot(path=HERE / "present.png")
    page.click("details.join > summary")
    page.screenshot(path=HERE / "present-qr.png")


def grid(browser, base: str, username: str, password: str) -> None:
    """A batch: the aspect ratio varied over three values, its grid in the result panel."""
    page = sign_in(browser, base, username, password, SIZES["desktop"])
    page.goto("/play/gemini-3-pro-image-preview-official")
    page.fill("textarea[name=prompt]", "A red fox crossing fresh snow at dawn")
    page.click("#field-size details.vary > summary")
    for size in ("1:1", "4:5", "16:9"):
        page.check(f"#field-size input[name=vary__size][value='{size}']")
    page.wait_for_selector("#cost [data-runs='3']")
    page.click("button.generate")
    page.wait_for_selector("#task-status.grid-panel")
    page.wait_for_selector(".grid-panel:not(:has(.grid-cell[hx-get]))", timeout=60_000)
    all_loaded(page, ".grid-cell img")
    page.screenshot(path=HERE / "grid.png", caret="initial")


def main(base: str, username: str, password: str, only: str = "") -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        if only in ("present", "grid"):
            (present if only == "present" else grid)(browser, base, username, password)
            return
        page = sign_in(browser, base, username, password, SIZES["desktop"])
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
        present(browser, base, username, password)
        grid(browser, base, username, password)
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:5])
