import re
import time

import httpx
import pytest
from django.contrib.auth import get_user_model
from standardwebhooks import Webhook, WebhookVerificationError

from playground.generations.models import TaskEvent
from playground.keys.services import issue_key

from ..conftest import WORKER
from ..fixtures_http import Reply
from .conftest import PASSWORD, sign_in, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SEED = "gemini-3-pro-image-preview-official"
WHSEC = re.compile(r"whsec_[A-Za-z0-9+/]{32}")


def test_a_key_created_in_the_dashboard_works_shows_its_use_and_stops_when_disabled(page, live_server):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/keys")
    page.fill("#id_name", "e2e-script")
    page.get_by_role("button", name="Create key").click()
    box = page.locator(".secret-box")
    box.wait_for()
    box.get_by_role("button", name="Copy").click()
    secret = page.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(r"pg_live_[0-9A-Za-z]{38}", secret)
    assert secret == page.locator("#new-secret").inner_text()

    api = httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=30)
    created = api.post("/api/v1/tasks", json={"model": SEED, "input": {"prompt": "from a script", "n": 2}})
    assert created.status_code == 201
    task_id = created.json()["task_id"]
    for _ in range(100):
        if api.get(f"/api/v1/tasks/{task_id}").json()["status"] == "succeeded":
            break
        page.wait_for_timeout(100)

    page.goto("/keys")
    row = page.locator("tr", has_text="e2e-script")
    assert "from 127.0.0.1" in row.locator(".last-used").inner_text()
    assert row.locator(".task-count").inner_text() == "1"
    assert row.locator(".spend").inner_text() == "$0.2412"
    assert secret not in page.content()

    row.get_by_role("button", name="Disable").click()
    page.locator("tr", has_text="e2e-script").locator(".badge", has_text="disabled").wait_for()
    refused = api.get("/api/v1/models")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "key_disabled"


def test_a_demo_pass_lets_a_guest_generate_until_it_is_revoked(page, browser, live_server):
    page.goto("/keys")
    passes = page.locator("#demo-passes")
    passes.get_by_label("Name").fill("Team demo")  # its own label, not the API key form's
    passes.get_by_label("Gemini 3 Pro Image").check()
    passes.locator("#pass_spend_cap").fill("1")
    passes.get_by_role("button", name="Create pass").click()
    link = page.locator("#demo-passes code.link-code").first
    link.wait_for()
    url = link.inner_text()

    guest_context = browser.new_context(viewport={"width": 1280, "height": 900})
    guest = guest_context.new_page()
    guest.set_default_timeout(20_000)
    guest.goto(url)  # the landing page: the link alone makes nobody a guest
    assert guest.get_by_role("heading", name="Team demo").is_visible()
    guest.get_by_role("button", name="Enter").click()
    guest.wait_for_selector("textarea[name=prompt]")
    assert "Demo: Team demo" in guest.content()
    guest.fill("textarea[name=prompt]", "a guest's lighthouse")
    guest.click("button.generate")
    guest.wait_for_url(re.compile(r"/tasks/task_\w+$"))
    guest.wait_for_selector("#task-status .badge[data-status=succeeded]")
    assert "pg_live_" not in guest.content()

    page.goto("/history")
    assert "a guest's lighthouse" in page.content() and "demo: Team demo" in page.content()
    page.goto("/keys")
    row = page.locator("#demo-passes tr", has_text="Team demo")
    row.get_by_text("Revoke", exact=True).click()  # asks first
    row.get_by_role("button", name="Revoke for good").click()
    page.locator("#demo-passes .badge", has_text="revoked").wait_for()

    guest.reload()
    assert "revoked by its owner" in guest.content()
    guest_context.close()


def verifying(secret: str):
    """A receiver that verifies with `secret` (the Standard Webhooks library) and refuses (401) the rest."""

    def answer(delivery):
        try:
            Webhook(secret).verify(delivery.body, delivery.headers)
        except WebhookVerificationError:
            return Reply(401, b"bad signature")
        return Reply(204)

    return answer


def webhook_outcome(task_id: str, timeout: float = 60) -> str:
    """The first "Webhook …" event of the task, once there is one."""
    deadline = time.monotonic() + timeout
    while not (found := TaskEvent.objects.filter(task_id=task_id, message__startswith="Webhook").first()):
        assert time.monotonic() < deadline, "no webhook was sent in time"
        time.sleep(0.1)
    return found.message


def test_a_webhook_secret_is_revealed_copied_verified_rotated_and_only_its_owners(
    new_page, person, spawn, start_http_server, live_server
):
    receiver = start_http_server()  # allow-listed here (the submit check) and for the worker below
    spawn(*WORKER, PLAYGROUND_FETCH_ALLOWED_HOSTS=receiver.netloc)
    api = httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Bearer {issue_key(person).secret}"}, timeout=30
    )

    def submit(path: str) -> str:
        body = {"model": SEED, "input": {"prompt": "tell me"}, "webhook_url": receiver.url(path)}
        created = api.post("/api/v1/tasks", json=body)
        assert created.status_code == 201, created.text
        return created.json()["task_id"]

    page = new_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, person)
    page.goto("/keys")
    section = page.locator("#webhook-secret")
    assert "None yet" in section.inner_text()

    section.get_by_role("button", name="Reveal").click()
    section.get_by_role("button", name="Copy").click()
    wait_until(page, "document.querySelector('#webhook-secret [data-copy]').textContent === 'Copied'")
    first = page.evaluate("navigator.clipboard.readText()")
    assert WHSEC.fullmatch(first) and first == page.locator("#webhook-secret-value").inner_text()
    receiver.route("/first", verifying(first))
    assert webhook_outcome(submit("/first")) == "Webhook delivered (204)."

    section.get_by_role("link", name="Hide").click()
    page.locator("#webhook-secret-value").wait_for(state="detached")
    assert first not in page.content() and f"whsec_…{first[-4:]}" in section.inner_text()

    section.get_by_text("Rotate", exact=True).click()  # asks first
    section.get_by_role("button", name="Rotate now").click()
    section.get_by_text("New secret made.").wait_for()
    second = page.locator("#webhook-secret-value").inner_text()
    assert WHSEC.fullmatch(second) and second != first
    assert "keeps signing beside it for 1\xa0day" in section.inner_text()
    assert f"whsec_…{first[-4:]}" in section.locator("dl").inner_text()  # the previous one, until…
    receiver.route("/old", verifying(first))
    receiver.route("/new", verifying(second))
    assert webhook_outcome(submit("/old")) == "Webhook delivered (204)."  # the grace period
    assert webhook_outcome(submit("/new")) == "Webhook delivered (204)."

    page.reload()
    assert first not in page.content() and second not in page.content()

    dave = get_user_model().objects.create_user("dave", password=PASSWORD)
    other = new_page(width=360, height=780)  # another person, on a phone
    sign_in(other, dave)
    other.goto("/keys")
    other.locator("#webhook-secret").get_by_role("button", name="Reveal").click()
    theirs = other.locator("#webhook-secret-value").inner_text()
    assert WHSEC.fullmatch(theirs) and theirs not in (first, second)
    assert first not in other.content() and second not in other.content()
    assert other.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_key_limited_in_the_dashboard_is_rolled_without_an_outage_and_the_audit_log_shows_it(
    page, live_server
):
    page.goto("/keys")
    keys = page.locator("#api-keys")
    keys.locator("#id_name").fill("limited-app")
    keys.locator("summary", has_text="Only these models").click()
    keys.get_by_label("Gemini 3 Pro Image").check()
    keys.get_by_label("Requests a minute").fill("30")
    keys.get_by_role("button", name="Create key").click()
    page.locator("#new-secret").wait_for()
    old_secret = page.locator("#new-secret").inner_text()
    row = page.locator("#api-keys tr", has_text="limited-app")
    assert "only Gemini 3 Pro Image · 30 a minute" in row.inner_text()
    assert "key.created" in page.locator("#audit-log").inner_text()  # updated in place, no reload

    old = key_client(live_server, old_secret)
    refused = old.post("/api/v1/tasks", json={"model": "gpt-image-2", "input": {"prompt": "no"}})
    assert refused.status_code == 403 and refused.json()["error"]["field"] == "model"

    row.locator("summary", has_text="Roll").click()
    row.get_by_label("The old secret").select_option(label="for 1 hour")
    row.get_by_role("button", name="Roll now").click()
    page.locator(".secret-box", has_text="The old secret keeps working until").wait_for()
    new_secret = page.locator("#new-secret").inner_text()
    assert new_secret != old_secret
    new = key_client(live_server, new_secret)
    assert new.get("/api/v1/models").json()["data"][0]["slug"] == SEED
    assert old.get("/api/v1/models").status_code == 200  # within the hour
    log = page.locator("#audit-log").inner_text()
    assert "key.rolled" in log and "carol from 127.0.0.1" in log
    page.reload()
    assert new_secret not in page.content()


def key_client(live_server, secret: str) -> httpx.Client:
    return httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=30)
