"""A team's whole journey in a real browser: the owner makes a team and stores its MindVideo key,
invites someone by link, the newcomer signs up through it (open sign-up is off) and generates on the
team's key without ever seeing it, the owner sees the task with the member's name in history and
usage, removes the member, and the member's next poll ends with a clear message.

With PLAYGROUND_DOCS_SCREENSHOTS=1 it also saves the README's team screenshots into docs/."""

import os
import re
from pathlib import Path

import pytest

from playground.generations.models import Task

from ..conftest import WORKER
from ..upstream import FakeUpstream, worker_env
from .conftest import PASSWORD, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DOCS = Path(__file__).resolve().parents[2] / "docs"
SEED_PATH = "/play/gemini-3-pro-image-preview-official"
TEAM_PAGE = re.compile(r"/team(#[a-z-]+)?$")  # a team form answers with the section it changed


def shot(page, name: str, selector: str | None = None, height: int | None = None) -> None:
    if os.environ.get("PLAYGROUND_DOCS_SCREENSHOTS") != "1":
        return
    if selector:
        page.locator(selector).screenshot(path=str(DOCS / name))
    else:
        clip = {"x": 0, "y": 0, "width": page.viewport_size["width"], "height": height}
        page.screenshot(path=str(DOCS / name), clip=clip)


@pytest.fixture
def platform(settings):
    fake = FakeUpstream()
    settings.MINDVIDEO_BASE_URL = fake.base_url
    settings.PLAYGROUND_ENGINE = "mindvideo"  # the web process picks each task's engine at submit
    yield fake
    fake.close()


def submit(page, prompt: str) -> str:
    page.goto(SEED_PATH)
    page.fill("textarea[name=prompt]", prompt)
    page.click("button.generate")
    page.wait_for_url(re.compile(r"/tasks/task_\w+$"))
    return page.url.rsplit("/", 1)[-1]


def test_owner_invites_a_member_who_generates_on_the_teams_key_until_removed(
    new_page, person, spawn, platform
):
    worker = spawn(*WORKER, **worker_env(platform))
    owner = new_page()
    sign_in(owner, person)

    # The owner makes a team and is working in it at once.
    owner.goto("/team")
    owner.fill("#id_name", "Design studio")
    owner.fill("#id_slug", "studio")
    owner.click("text=Make team")
    owner.wait_for_url(TEAM_PAGE)
    assert owner.locator("#workspace-select option:checked").inner_text() == "Design studio"

    # The team's MindVideo key, tested by the platform, stored once.
    owner.fill("#upstream-key #id_secret", platform.key)
    owner.fill("#upstream-key #id_label", "company account")
    owner.click("#upstream-key button.primary")
    owner.locator("#upstream-key .notice").wait_for()
    assert "working" in owner.locator("#upstream-key").inner_text()

    # An invite link, shown once.
    owner.select_option("#id_role", "member")
    owner.click("text=Make invite link")
    link = owner.locator("#invite-link").inner_text().strip()
    assert re.fullmatch(r"http://[^/]+/invite/[A-Za-z0-9_-]{30,}", link), link

    # Someone new opens it, creates an account through it and is in the team's workspace.
    member = new_page()
    member.goto(link)
    assert "Join Design studio" in member.locator("h1").inner_text()
    member.fill("#id_username", "erin")
    member.fill("#id_password1", PASSWORD)
    member.fill("#id_password2", PASSWORD)
    member.click("text=Create account and join")
    member.wait_for_url("**/play/**")
    assert member.locator("#workspace-select option:checked").inner_text() == "Design studio"

    # The owner gives erin a monthly budget of her own within the team.
    owner.goto("/team")
    erin_row = owner.locator("#members tr", has_text="erin")
    erin_row.locator("summary", has_text="Change").click()
    erin_row.locator("input[name=budget]").fill("5")
    erin_row.locator("select[name=budget_period]").select_option("month")
    erin_row.locator("button", has_text="Set budget").click()
    owner.wait_for_url(TEAM_PAGE)
    assert "$5 left of $5 per month" in owner.locator("#members tr", has_text="erin").inner_text()

    # erin generates: the task runs on the team's key, which her pages never show.
    task_id = submit(member, "A glass greenhouse at night")
    member.wait_for_selector(f"#task-status:has(a[href$='{task_id}']) .badge[data-status=succeeded]")
    assert [s.headers["authorization"] for s in platform.seen("submit")] == [f"Bearer {platform.key}"]
    for path in ("/team", "/keys", SEED_PATH, f"/tasks/{task_id}"):
        member.goto(path)
        html = member.content()
        assert platform.key not in html and platform.key[-4:] not in html, path
    member.goto("/team")
    assert member.locator("#invites").count() == 0  # a member invites nobody

    # The owner sees erin's task, with her name, in the team's history and usage.
    owner.goto("/history")
    row = owner.locator("table.tasks tbody tr", has_text="A glass greenhouse at night")
    assert row.locator(".run-by").inner_text() == "erin"
    owner.select_option("select[name=member]", "erin")
    owner.click("text=Filter")
    assert owner.locator("table.tasks tbody tr").count() == 1
    owner.select_option("select[name=member]", "")
    owner.click("text=Filter")
    shot(owner, "team-history.png", height=420)
    owner.goto("/usage")
    members = owner.locator("#usage-per-member")
    assert "erin" in members.inner_text()
    assert "of $5 per month" in members.inner_text()
    shot(owner, "team-usage.png", ".usage-grid")

    # A second task waits in line (the worker is stopped) and erin's page polls it ...
    worker.terminate()
    worker.wait(timeout=20)
    waiting = submit(member, "A greenhouse at dawn")
    member.locator("#task-status[hx-get]").wait_for()
    # ... when the owner removes her.
    owner.goto("/team")
    shot(owner, "team-members.png", height=700)
    erin_row = owner.locator("#members tr", has_text="erin")
    erin_row.locator("summary", has_text="Remove").click()
    erin_row.locator("button", has_text="Remove erin").click()
    owner.wait_for_url(TEAM_PAGE)
    assert owner.locator("#members tr", has_text="erin").count() == 0

    # Her next poll ends cleanly, saying why; the task stays the team's.
    member.locator("#task-status", has_text="no longer a member").wait_for(timeout=15_000)
    assert Task.objects.get(pk=waiting).team.slug == "studio"
    member.goto("/history")
    assert "A glass greenhouse" not in member.content()  # she is in her personal workspace now
