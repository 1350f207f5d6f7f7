"""Real-browser tests: Debian's chromium driven by Playwright, against the live server, with a
real `db_worker` process running the tasks."""

import os
import shutil
from contextlib import contextmanager

import pytest
from django.contrib.auth import get_user_model

from ..conftest import WORKER

# Playwright's sync API runs an event loop in this thread; Django's ORM must be allowed beside it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("PLAYGROUND_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "e2e-password-1"


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (the CI script does).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def worker(spawn):
    return spawn(*WORKER)


@pytest.fixture
def person(transactional_db, catalog):
    return get_user_model().objects.create_user("carol", password=PASSWORD)


@contextmanager
def csp_checked_pages(browser):
    """`open_page(**context_options)`: a page in a fresh browser context (another person, with
    cookies of their own). All are closed at the end, which fails the test if any page broke its
    Content-Security-Policy (an inline style, an image from an origin it does not allow)."""
    opened = []

    def open_page(**context_options):
        context = browser.new_context(**context_options)
        page = context.new_page()
        page.set_default_timeout(20_000)
        violations = []
        page.on(
            "console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None
        )
        opened.append((context, violations))
        return page

    yield open_page
    for context, violations in opened:
        context.close()
        assert not violations, f"a page broke its Content-Security-Policy: {violations}"


@pytest.fixture
def new_page(browser, live_server):
    """`new_page(width=1280, height=900)`: a page on the live server (`csp_checked_pages`)."""
    with csp_checked_pages(browser) as open_page:
        yield lambda width=1280, height=900: open_page(
            base_url=live_server.url, viewport={"width": width, "height": height}
        )


def sign_in(page, user, password=PASSWORD):
    page.goto("/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/play/**")


@pytest.fixture
def page(new_page, worker, person):
    """A signed-in page in a fresh browser context."""
    page = new_page()
    sign_in(page, person)
    return page


def wait_until(page, expression: str, timeout: float = 10) -> None:
    """Until `expression` is true in the page. Playwright's `wait_for_function` polls with an eval
    that the page's Content-Security-Policy refuses (so it fails whenever it has to wait); an
    `evaluate` from here is not the page's own script."""
    for _ in range(int(timeout * 10)):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"still not {expression}")
