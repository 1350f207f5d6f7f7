import re

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SEED = "gemini-3-pro-image-preview-official"


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
    assert row.locator(".requests").inner_text() == "1"
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
    guest.goto(url)
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
