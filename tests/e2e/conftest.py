"""Real-browser tests: Debian's chromium driven by Playwright, against the live server, with a
real `db_worker` process running the tasks."""

import os
import shutil

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


@pytest.fixture
def page(browser, live_server, worker, person):
    """A signed-in page in a fresh browser context."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    violations = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto("/accounts/login/")
    page.fill("#id_username", person.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/play/**")
    yield page
    context.close()
    assert not violations, f"the page broke its Content-Security-Policy: {violations}"
