"""A person in Chromium on a cluster of hosts (tests/scale/cluster.py): what they see when the file
comes from another host's bucket, and while the bucket or PostgreSQL is briefly away.

Web host 2 redirects file URLs to the bucket's presigned URLs, so its images load from another
origin. The engine takes a few seconds per image: time to stop PostgreSQL while a status panel is
still polling. One browser session spans both web hosts, as behind a load balancer (the session is
in the shared database).
"""

import zipfile
from pathlib import Path

import pytest

from ..e2e.conftest import CHROMIUM, CHROMIUM_ARGS, csp_checked_pages
from ..e2e.conftest import wait_until as wait_in_page
from .cluster import PASSWORD, SEED, Cluster, Postgres, wait_until

ENGINE_DELAY = 3  # seconds per image
SETTINGS = {
    "PLAYGROUND_LOCAL_ENGINE_DELAY": str(ENGINE_DELAY),
    # A run the outage broke off is started again within seconds, not after the default minute.
    "PLAYGROUND_TASK_LEASE": "15",
    "PLAYGROUND_TASK_HEARTBEAT": "3",
}
PANEL_IMAGES = "#task-status .gallery img"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, scale_database_url):
    cluster = Cluster(
        tmp_path_factory.mktemp("hosts"),
        Postgres(scale_database_url, name="playground_browser"),
        webs=2,
        workers=1,
        settings=SETTINGS,
        presigned_webs=(1,),
    )
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser):
    """`new_page(web, width=1280, height=900)`: a page on `web` (`csp_checked_pages`: the test fails
    if a page broke its Content-Security-Policy, say by an image from a bucket it does not allow)."""
    with csp_checked_pages(browser) as open_page:
        yield lambda web, width=1280, height=900: open_page(
            base_url=web.url, viewport={"width": width, "height": height}, accept_downloads=True
        )


def sign_in(page) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/play/{SEED}")


def generate(page, prompt: str, images: int = 1) -> str:
    """Fill the form, press Generate; the new task's id once its panel is on show."""
    page.fill("textarea[name=prompt]", prompt)
    page.fill("input[name=n]", str(images))
    page.locator("#cost:not(.stale)").wait_for()
    before = page.locator("#task-status").get_attribute("data-task")
    page.click("button.generate")
    page.wait_for_selector(f"#task-status[data-task]:not([data-task='{before}'])")
    return page.locator("#task-status").get_attribute("data-task")


def widths(page, selector: str = PANEL_IMAGES) -> list[int]:
    """The natural width of each image `selector` finds: 0 for one that did not load (yet)."""
    return page.evaluate(
        f"[...document.querySelectorAll({selector!r})].map(i => i.complete ? i.naturalWidth : 0)"
    )


def loaded(count: int, selector: str = PANEL_IMAGES) -> str:
    """A page expression: `count` images at `selector`, each loaded (a width of its own)."""
    images = f"[...document.querySelectorAll({selector!r})]"
    return f"{images}.length === {count} && {images}.every(i => i.complete && i.naturalWidth > 0)"


def test_an_image_made_on_one_host_shows_and_downloads_on_the_presigned_host(cluster, new_page):
    web_a, web_b = cluster.web_hosts
    page = new_page(web_a)
    sign_in(page)
    task_id = generate(page, "a red fox in the snow")
    wait_in_page(page, loaded(1), timeout=30)
    [streamed] = cluster.bucket_keys(f"outputs/{task_id}/")
    with page.expect_download() as saved:
        page.click("#task-status figcaption a[download]")
    original = Path(saved.value.path()).read_bytes()
    assert original.startswith(b"\x89PNG")

    # The same person, the same browser, on the other host (signed in still): the image loads from
    # the bucket the host redirects to, another origin, which the page's policy allows.
    from_bucket = []
    bucket = f"http://127.0.0.1:{cluster.link.port}/"
    page.on("response", lambda r: from_bucket.append(r.status) if r.url.startswith(bucket) else None)
    page.goto(f"{web_b.url}/tasks/{task_id}")
    wait_in_page(page, loaded(1))
    assert widths(page) == [1024]
    assert from_bucket and set(from_bucket) == {200}, from_bucket

    # Download saves the file rather than leaving for the bucket's address to show it there, and
    # Download all is the zip of it.
    with page.expect_download() as saved:
        page.click("#task-status figcaption a[download]")
    assert saved.value.suggested_filename == f"{task_id}-0.png"
    assert Path(saved.value.path()).read_bytes() == original
    assert page.url == f"{web_b.url}/tasks/{task_id}"
    with page.expect_download() as saved:
        page.click("text=Download all (.zip)")
    with zipfile.ZipFile(saved.value.path()) as archive:
        assert archive.namelist() == [f"{task_id}-0.png"]
        assert archive.read(f"{task_id}-0.png") == original
    assert streamed.endswith("/0.png") and cluster.local_files() == []


def test_images_the_cut_bucket_refused_appear_by_themselves_once_it_is_back(cluster, new_page):
    web_a, web_b = cluster.web_hosts
    done = cluster.submit(web_a, prompt="a harbour at noon", n=2)
    page = new_page(web_b)
    sign_in(page)
    assert wait_until(lambda: cluster.ended([done]), 30)

    cluster.link.cut()
    try:
        page.goto(f"/tasks/{done}")  # the page needs only the database; its images, the bucket
        wait_in_page(page, f"[...document.querySelectorAll({PANEL_IMAGES!r})].every(i => i.complete)", 30)
        assert widths(page) == [0, 0], "the images loaded with the bucket cut"
    finally:
        cluster.link.restore()
    wait_in_page(page, loaded(2), timeout=15)  # no reload: the page asks again


def test_the_panel_rides_out_a_postgres_restart_and_generate_meanwhile_says_to_send_again(cluster, new_page):
    web_a, web_b = cluster.web_hosts
    phone = new_page(web_b, width=390, height=844)
    sign_in(phone)
    page = new_page(web_a)
    sign_in(page)
    one_image = page.locator("#cost").inner_text()
    task_id = generate(page, "two slow lighthouses", images=2)
    page.wait_for_selector("#task-status[hx-trigger] .badge[data-status=processing]")

    cluster.database.stop()
    try:
        # The panel goes on polling through the 503s, saying why nothing moves.
        notice = page.locator("#task-status [data-poll-unavailable]")
        notice.wait_for(timeout=10_000)
        assert "not answering just now" in notice.inner_text()
        assert page.locator("#task-status[hx-trigger] .badge[data-status=processing]").count() == 1

        # Generate is refused above the form, which keeps what was typed (and one image's price
        # is asked for again until it comes).
        page.fill("textarea[name=prompt]", "typed while the database was down")
        page.fill("input[name=n]", "1")
        page.click("button.generate")
        refusal = page.locator("#run-form > [data-body-error]")
        refusal.wait_for()
        assert refusal.inner_text().startswith("The database is not answering (it may be restarting).")
        assert "What you sent was not saved: send it again then (the form keeps what you typed)." in (
            refusal.inner_text()
        )
        assert 0 <= refusal.bounding_box()["y"] < 900  # in view
        assert page.input_value("textarea[name=prompt]") == "typed while the database was down"

        # A page opened meanwhile, on a phone: back in a moment, tries again by itself, and offers
        # no Sign in to a person who is signed in (who it is cannot be known without the database).
        assert phone.goto("/history").status == 503
        assert phone.locator("h1").inner_text() == "Back in a moment"
        assert "The database is not answering" in phone.locator("[role=alert]").inner_text()
        assert "not saved" not in phone.locator("main").inner_text()
        assert phone.get_by_role("link", name="Try again").is_visible()
        assert phone.get_by_text("Sign in").count() == 0
        assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    finally:
        cluster.database.start()

    # Without a reload: the panel ends showing both images, the price is one image's again, and the
    # phone's page is History.
    page.wait_for_selector(
        f"#task-status[data-task='{task_id}'] .badge[data-status=succeeded]", timeout=45_000
    )
    wait_in_page(page, loaded(2))
    assert page.locator("#task-status[hx-trigger], [data-poll-unavailable]").count() == 0
    page.wait_for_selector("#cost:not(.stale)")
    assert page.locator("#cost").inner_text() == one_image
    phone.locator("h1:has-text('History')").wait_for(timeout=15_000)
    typed_meanwhile = "SELECT count(*) FROM generations_task WHERE input->>'prompt' = %s"
    assert cluster.database.query(typed_meanwhile, "typed while the database was down") == [(0,)]

    # Generate again, as the message said: it goes through, and the message is gone.
    page.click("button.generate")
    page.wait_for_selector(f"#task-status[data-task]:not([data-task='{task_id}'])")
    assert page.locator("#run-form [data-body-error]").count() == 0
    assert cluster.database.query(typed_meanwhile, "typed while the database was down") == [(1,)]
