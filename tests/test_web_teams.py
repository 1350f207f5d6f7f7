"""Teams in the browser: the workspace switcher, the team's shared history with who ran each task,
invites by a single-use link (sign-up stays closed), roles, budgets, the team's MindVideo key that
runs every member's tasks and that no member can read, usage per member, and a member removed
losing the team at their next request."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from playground.access.passes import pass_token
from playground.generations.models import Status, Task
from playground.keys.credentials import upstream_key_for
from playground.keys.models import ApiKey, AuditEntry, DemoPass, UpstreamCredential
from playground.teams.models import Invite, Membership, Role
from playground.teams.services import add_member, create_team, remove_member

from .helpers import SEED, enter_demo, seed_input
from .upstream import FakeUpstream

PASSWORD = "a-long-pass-4711"


@pytest.fixture
def people(db, catalog):
    make = get_user_model().objects.create_user
    return {name: make(name, password=PASSWORD) for name in ("alice", "bob", "carol", "dave")}


@pytest.fixture
def studio(people):
    """alice owns "studio", bob is a member, carol an admin; dave is in no team."""
    team = create_team("studio", people["alice"], "Studio")
    add_member(team, people["bob"])
    add_member(team, people["carol"], Role.ADMIN)
    return team


def browser(user, team=None) -> Client:
    client = Client()
    client.force_login(user)
    if team is not None:
        assert client.post(reverse("workspace"), {"team": team.slug}).status_code == 302
    return client


def generate(client, prompt="a fox in the snow", **headers) -> Task:
    response = client.post(
        reverse("play", args=[SEED]), {**seed_input(prompt=prompt), "form_token": ""}, **headers
    )
    assert response.status_code == 302, response.content.decode()[:500]
    return Task.objects.get(pk=response["Location"].rsplit("/", 1)[-1])


# --- The switcher and the shared history --------------------------------------------------------------


def test_a_task_made_in_the_team_workspace_is_the_teams_and_every_member_sees_who_ran_it(studio, people):
    bob = browser(people["bob"], studio)
    task = generate(bob, "bobs team fox")
    assert task.team_id == studio.pk and task.owner == people["bob"]
    alice = browser(people["alice"], studio)
    history = alice.get(reverse("history")).content.decode()
    assert "bobs team fox" in history and 'class="run-by">bob<' in history
    assert alice.get(reverse("task", args=[task.pk])).status_code == 200
    # alice's personal workspace has none of it, and neither has anyone outside the team.
    alice.post(reverse("workspace"), {"team": ""})
    assert "bobs team fox" not in alice.get(reverse("history")).content.decode()
    assert alice.get(reverse("task", args=[task.pk])).status_code == 404
    assert browser(people["dave"]).get(reverse("task", args=[task.pk])).status_code == 404


def test_the_history_filters_by_member_and_compare_says_who_ran_each(studio, people):
    bob, carol = browser(people["bob"], studio), browser(people["carol"], studio)
    mine, theirs = generate(bob, "from bob"), generate(carol, "from carol")
    html = bob.get(reverse("history"), {"member": "carol"}).content.decode()
    assert "from carol" in html and "from bob" not in html
    compared = bob.get(reverse("compare"), {"ids": [mine.pk, theirs.pk]}).content.decode()
    assert "by bob" in compared and "by carol" in compared


def test_the_header_switches_workspace_and_back(studio, people):
    bob = browser(people["bob"])
    page = bob.get(reverse("history")).content.decode()
    assert 'id="workspace-select"' in page and ">Studio</option>" in page
    response = bob.post(reverse("workspace"), {"team": "studio", "next": "/history"})
    assert response["Location"] == "/history"
    assert "Studio" in bob.get(reverse("history")).content.decode().split("</h1>")[0]
    # A task page belongs to one workspace: switching from it goes to the playground.
    assert bob.post(reverse("workspace"), {"team": "", "next": "/tasks/x"})["Location"] == reverse("home")
    assert bob.post(reverse("workspace"), {"team": "", "next": "https://evil.example/"})["Location"] == "/"


def test_nobody_switches_into_a_team_they_are_not_in(studio, people):
    dave = browser(people["dave"])
    assert dave.post(reverse("workspace"), {"team": "studio"}).status_code == 404
    assert dave.session.get("workspace") is None


# --- A member removed ----------------------------------------------------------------------------------


def test_a_member_removed_loses_the_team_at_their_next_request_and_is_back_in_their_own(studio, people):
    bob = browser(people["bob"], studio)
    task = generate(bob)
    remove_member(studio, people["bob"])
    hx = {"HX-Request": "true"}
    poll = bob.get(reverse("task", args=[task.pk]), headers=hx)
    assert poll.status_code == 286  # the panel says why, naming the team, and stops polling
    assert "no longer a member of Studio" in poll.content.decode()
    # bob is in his personal workspace from then on: the strip's poll drops the team's task, and
    # the task's page is not his to open.
    thumb = bob.get(reverse("task-thumb", args=[task.pk]), headers=hx)
    assert thumb.status_code == 286 and thumb.content == b""
    assert bob.get(reverse("task", args=[task.pk])).status_code == 404
    assert bob.get(reverse("history")).status_code == 200
    assert Task.objects.get(pk=task.pk).team_id == studio.pk  # the task stays the team's


def test_a_removed_members_next_page_opens_in_their_own_workspace_saying_why(studio, people):
    bob = browser(people["bob"], studio)
    generate(bob, "a team task")
    remove_member(studio, people["bob"])
    page = bob.get(reverse("history"), {"member": "bob"}, follow=True)
    assert page.redirect_chain == [("/history", 302)]  # the team's filter means nothing now
    html = page.content.decode()
    assert "You are no longer a member of Studio" in html and "a team task" not in html
    assert "no longer a member" not in bob.get(reverse("history")).content.decode()  # said once


# --- Invites --------------------------------------------------------------------------------------------


def make_invite(client, role="member", hours=72) -> str:
    html = client.post(
        reverse("team-invite-create"), {"role": role, "hours": hours}, follow=True
    ).content.decode()
    return re.search(r'<code id="invite-link">http://testserver(/invite/[^<]+)</code>', html).group(1)


def test_someone_without_an_account_joins_by_the_invite_link_though_sign_up_is_closed(studio, people):
    alice = browser(people["alice"], studio)
    link = make_invite(alice)
    assert Client().get(reverse("signup")).status_code == 404  # closed by default
    newcomer = Client()
    page = newcomer.get(link).content.decode()
    assert "Join Studio" in page and "Create account and join" in page
    response = newcomer.post(link, {"username": "erin", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    erin = get_user_model().objects.get(username="erin")
    assert Membership.objects.get(team=studio, user=erin).role == Role.MEMBER
    # erin works in the team at once: her first task is the team's.
    assert generate(newcomer).team_id == studio.pk
    # The link worked once.
    again = Client().post(link, {"username": "frank", "password1": PASSWORD, "password2": PASSWORD})
    assert again.status_code == 410 and "used already" in again.content.decode()
    assert not get_user_model().objects.filter(username="frank").exists()
    assert AuditEntry.objects.filter(team=studio, action="member.added", subject="erin").exists()


def test_someone_signed_in_joins_with_one_press_and_a_preview_does_not_use_the_link(studio, people):
    link = make_invite(browser(people["carol"], studio), role="admin")
    dave = browser(people["dave"])
    assert "Join as dave" in dave.get(link).content.decode()
    assert not Membership.objects.filter(user=people["dave"]).exists()  # GET joins nobody
    assert dave.post(link).status_code == 302
    assert Membership.objects.get(team=studio, user=people["dave"]).role == Role.ADMIN


def test_an_expired_withdrawn_or_made_up_invite_is_refused_with_no_account_made(studio, people):
    alice = browser(people["alice"], studio)
    expired, withdrawn = make_invite(alice), make_invite(alice)
    Invite.objects.filter(pk=Invite.objects.order_by("pk").first().pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    invite = Invite.objects.order_by("pk").last()
    alice.post(reverse("team-invite-revoke", args=[invite.pk]))
    for link in (expired, withdrawn, "/invite/made-up-token"):
        response = Client().post(link, {"username": "zed", "password1": PASSWORD, "password2": PASSWORD})
        assert response.status_code == 410, link
        assert "expired or was withdrawn" in response.content.decode()
    assert not get_user_model().objects.filter(username="zed").exists()


def test_an_invite_does_not_demote_someone_already_in_the_team(studio, people):
    link = make_invite(browser(people["carol"], studio))
    alice = browser(people["alice"])
    assert "already, as owner" in alice.post(link).content.decode()
    assert Membership.objects.get(team=studio, user=people["alice"]).role == Role.OWNER
    assert Invite.objects.get().used_at is None


def test_a_bad_sign_up_through_an_invite_names_the_field_and_keeps_the_invite(studio, people):
    link = make_invite(browser(people["alice"], studio))
    response = Client().post(link, {"username": "bob", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 422 and "already exists" in response.content.decode()
    assert Invite.objects.get().used_at is None


# --- Roles ------------------------------------------------------------------------------------------------


def test_a_member_manages_nothing(studio, people):
    bob = browser(people["bob"], studio)
    page = bob.get(reverse("team")).content.decode()
    assert "Invite someone" not in page and "Audit log" not in page
    for url, data in (
        (reverse("team-invite-create"), {"role": "member", "hours": 1}),
        (reverse("team-member-add"), {"username": "dave", "role": "member"}),
        (reverse("team-budget"), {"budget": "1"}),
        (reverse("team-member-budget", args=[people["carol"].pk]), {"budget": "1"}),
        (reverse("team-upstream-save"), {"secret": "x"}),
        (reverse("team-upstream-delete"), {}),
        (reverse("team-member-role", args=[people["bob"].pk]), {"role": "owner"}),
        (reverse("team-member-remove", args=[people["carol"].pk]), {}),
    ):
        response = bob.post(url, data)
        assert response.status_code == 403, url
        assert "owners and admins" in response.content.decode()
    assert bob.get(reverse("team-audit-csv")).status_code == 403
    assert Membership.objects.get(team=studio, user=people["bob"]).role == Role.MEMBER
    assert not Invite.objects.exists()


def test_an_admin_manages_members_but_only_an_owner_touches_owners(studio, people):
    carol = browser(people["carol"], studio)
    assert (
        carol.post(reverse("team-member-role", args=[people["bob"].pk]), {"role": "admin"}).status_code == 302
    )
    refused = carol.post(reverse("team-member-role", args=[people["bob"].pk]), {"role": "owner"})
    assert refused.status_code == 403 and "Only an owner" in refused.content.decode()
    refused = carol.post(reverse("team-member-remove", args=[people["alice"].pk]))
    assert refused.status_code == 403
    added = carol.post(reverse("team-member-add"), {"username": "dave", "role": "member"})
    assert added.status_code == 302
    unknown = carol.post(reverse("team-member-add"), {"username": "nobody", "role": "member"})
    assert unknown.status_code == 422 and "No account is named" in unknown.content.decode()
    alice = browser(people["alice"], studio)
    assert (
        alice.post(reverse("team-member-role", args=[people["carol"].pk]), {"role": "owner"}).status_code
        == 302
    )


def test_the_last_owner_cannot_leave_but_a_member_can(studio, people):
    alice = browser(people["alice"], studio)
    refused = alice.post(reverse("team-member-remove", args=[people["alice"].pk]))
    assert refused.status_code == 409 and "at least one owner" in refused.content.decode()
    bob = browser(people["bob"], studio)
    assert bob.post(reverse("team-member-remove", args=[people["bob"].pk])).status_code == 302
    assert not Membership.objects.filter(team=studio, user=people["bob"]).exists()
    assert bob.session.get("workspace") is None


def test_a_team_made_in_the_browser_has_its_maker_as_owner_and_is_worked_in_at_once(people):
    dave = browser(people["dave"])
    assert dave.post(reverse("team-create"), {"name": "Night shift", "slug": "night"}).status_code == 302
    assert Membership.objects.get(team__slug="night").role == Role.OWNER
    assert "Night shift" in dave.get(reverse("team")).content.decode()
    taken = dave.post(reverse("team-create"), {"name": "Again", "slug": "night"})
    assert taken.status_code == 422 and "exists already" in taken.content.decode()


# --- Budgets --------------------------------------------------------------------------------------------


def test_a_members_budget_set_on_the_team_page_refuses_their_next_task_by_name(studio, people):
    alice = browser(people["alice"], studio)
    url = reverse("team-member-budget", args=[people["bob"].pk])
    assert alice.post(url, {"budget": "0.0001", "budget_period": "month"}).status_code == 302
    bob = browser(people["bob"], studio)
    response = bob.post(reverse("play", args=[SEED]), {**seed_input(), "form_token": ""})
    assert response.status_code == 422
    assert "your monthly budget in the team" in response.content.decode()
    assert AuditEntry.objects.filter(team=studio, action="budget.changed", subject="bob").exists()
    bad = alice.post(url, {"budget": "lots"})
    assert bad.status_code == 422 and "Enter an amount in dollars" in bad.content.decode()


def test_the_team_budget_form_names_its_field(studio, people):
    alice = browser(people["alice"], studio)
    bad = alice.post(reverse("team-budget"), {"budget": "", "budget_period": "week"})
    assert bad.status_code == 422 and "Set a budget for it to reset" in bad.content.decode()
    assert alice.post(reverse("team-budget"), {"budget": "50", "budget_period": "month"}).status_code == 302
    studio.refresh_from_db()
    assert studio.budget == Decimal(50) and studio.budget_period == "month"


# --- The team's MindVideo key ---------------------------------------------------------------------------


@pytest.fixture
def platform(settings):
    fake = FakeUpstream()
    settings.MINDVIDEO_BASE_URL = fake.base_url
    settings.MINDVIDEO_POLL_INTERVAL = 0.01
    settings.MINDVIDEO_TIMEOUT = 2.0
    yield fake
    fake.close()


def test_a_members_task_runs_on_the_teams_key_which_no_member_can_read(
    studio, people, platform, settings, django_capture_on_commit_callbacks
):
    carol = browser(people["carol"], studio)
    saved = carol.post(reverse("team-upstream-save"), {"secret": platform.key, "label": "company"})
    assert "Accepted by the platform." in saved.content.decode()
    assert upstream_key_for(people["carol"].pk, studio.pk) == platform.key
    assert upstream_key_for(people["carol"].pk) is None  # not carol's own
    bob = browser(people["bob"], studio)
    page = bob.get(reverse("team")).content.decode()
    assert platform.key not in page and platform.key[-4:] not in page and "working" in page
    settings.PLAYGROUND_ENGINE = "mindvideo"
    with django_capture_on_commit_callbacks(execute=True):
        task = generate(bob)
    task.refresh_from_db()
    assert task.status == Status.SUCCEEDED, task.error
    assert [s.headers["authorization"] for s in platform.seen("submit")] == [f"Bearer {platform.key}"]
    assert AuditEntry.objects.filter(team=studio, action="upstream_key.set").exists()


def test_a_members_own_key_never_runs_a_team_task(
    studio, people, platform, settings, django_capture_on_commit_callbacks
):
    from playground.keys.credentials import store_upstream_key

    store_upstream_key(people["bob"], platform.key)  # bob's personal key, accepted upstream
    settings.PLAYGROUND_ENGINE = "mindvideo"
    bob = browser(people["bob"], studio)
    assert "the team has no working MindVideo key" in bob.get(reverse("play", args=[SEED])).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        task = generate(bob)
    task.refresh_from_db()
    assert task.status == Status.FAILED and not platform.seen("submit")


def test_deleting_the_teams_key_leaves_members_own_keys_alone(studio, people, platform):
    from playground.keys.credentials import store_upstream_key

    store_upstream_key(people["carol"], platform.key)
    carol = browser(people["carol"], studio)
    carol.post(reverse("team-upstream-save"), {"secret": platform.key})
    carol.post(reverse("team-upstream-delete"))
    assert list(UpstreamCredential.objects.values_list("user__username", "team")) == [("carol", None)]


# --- Usage and keys in a team's workspace ---------------------------------------------------------------


def test_usage_shows_each_members_spend_and_budget_left(studio, people):
    generate(browser(people["bob"], studio))
    generate(browser(people["carol"], studio))
    generate(browser(people["bob"]))  # bob's personal task counts nowhere here
    membership = Membership.objects.get(team=studio, user=people["bob"])
    membership.budget = Decimal(10)
    membership.save()
    alice = browser(people["alice"], studio)
    html = alice.get(reverse("usage")).content.decode()
    member_table = html.split('id="usage-per-member"')[1].split("</section>")[0]
    assert re.search(r"<td>bob</td><td>1</td>", member_table)
    assert re.search(r"<td>carol</td><td>1</td>", member_table)
    assert "of $10</span>" in member_table
    csv = alice.get(reverse("usage-csv")).content.decode()
    assert "member,bob,1," in csv and "member,carol,1," in csv


def test_a_key_made_in_the_team_workspace_is_the_teams_and_only_managers_see_all_of_them(studio, people):
    bob = browser(people["bob"], studio)
    bob.post(reverse("key-create"), {"name": "bobs-team-key"})
    key = ApiKey.objects.get(name="bobs-team-key")
    assert key.team_id == studio.pk and key.user == people["bob"]
    carol = browser(people["carol"], studio)
    carol.post(reverse("key-create"), {"name": "carols-team-key"})
    assert "carols-team-key" not in bob.get(reverse("keys")).content.decode()
    page = carol.get(reverse("keys")).content.decode()
    assert "bobs-team-key" in page and "issued to bob" in page
    # A member cannot touch another's team key; an admin can.
    other = ApiKey.objects.get(name="carols-team-key")
    assert bob.post(reverse("key-action", args=[other.pk, "disable"])).status_code == 404
    assert carol.post(reverse("key-action", args=[key.pk, "disable"])).status_code == 302
    # Neither appears in bob's personal workspace.
    bob.post(reverse("workspace"), {"team": ""})
    assert "bobs-team-key" not in bob.get(reverse("keys")).content.decode()


# --- Every door of a team's task, for each kind of person ----------------------------------------------


def task_doors(task: Task) -> list[tuple[str, str, dict]]:
    """Each way a browser reaches one task: (method, URL, headers)."""
    name = task.output["images"][0]["file"].rsplit("/", 1)[-1]
    hx = {"HX-Request": "true"}
    return [
        ("get", reverse("task", args=[task.pk]), {}),
        ("get", reverse("task", args=[task.pk]), hx),  # the status poll
        ("get", reverse("task-thumb", args=[task.pk]), hx),
        ("get", reverse("task-zip", args=[task.pk]), {}),
        ("get", reverse("task-file", args=[task.pk, name]), {}),  # without its signed token
        ("post", reverse("task-share", args=[task.pk]), {}),
        ("post", reverse("task-cancel", args=[task.pk]), {}),
    ]


@pytest.fixture
def team_task(studio, people, django_capture_on_commit_callbacks) -> Task:
    with django_capture_on_commit_callbacks(execute=True):
        task = generate(browser(people["bob"], studio), "the team's own fox")
    task.refresh_from_db()
    assert task.status == Status.SUCCEEDED
    return task


def test_every_door_of_a_team_task_opens_for_its_members_and_no_one_else(team_task, studio, people):
    other = create_team("agency", people["dave"], "Agency")
    outsiders = {
        "another team's member, in that team": browser(people["dave"], other),
        "another team's member, in their own workspace": browser(people["dave"]),
        "the task's own author, in their personal workspace": browser(people["bob"]),
        "a member of the team, in their personal workspace": browser(people["alice"]),
    }
    for who, client in outsiders.items():
        for method, url, headers in task_doors(team_task):
            status = getattr(client, method)(url, headers=headers).status_code
            expected = {404} if not headers else {404, 286}  # a poll out of reach stops, saying so
            assert status in expected, (who, method, url, status)
    insiders = {"its owner": browser(people["alice"], studio), "an admin": browser(people["carol"], studio)}
    for who, client in insiders.items():
        for method, url, headers in task_doors(team_task):
            if url.endswith("/cancel"):
                continue  # it has ended: cancel answers as for an ended task, below
            status = getattr(client, method)(url, headers=headers).status_code
            assert status in (200, 201, 286, 302), (
                who,
                method,
                url,
                status,
            )  # 302: a POST done, back to the page
    assert Task.objects.get(pk=team_task.pk).status == Status.SUCCEEDED  # nobody outside cancelled it


# --- A team's demo passes ------------------------------------------------------------------------------


def team_pass(client, name="Team demo") -> DemoPass:
    response = client.post(
        reverse("pass-create"), {"name": name, "models": [SEED], "spend_cap": "1", "hours": "2"}
    )
    assert response.status_code == 200 and f"Pass “{name}” created" in response.content.decode()
    return DemoPass.objects.get(name=name)


def guest_of(demo_pass: DemoPass) -> Client:
    guest = Client()
    enter_demo(guest, reverse("demo", args=[pass_token(demo_pass)]))
    return guest


def test_a_pass_made_in_the_team_workspace_is_the_teams_and_so_are_its_guests_tasks(studio, people):
    carol = browser(people["carol"], studio)  # an admin
    demo = team_pass(carol)
    assert demo.team_id == studio.pk
    task = generate(guest_of(demo), "a guest of the team")
    assert task.team_id == studio.pk and task.demo_pass_id == demo.pk
    # Every member sees it in the team's history; the admins manage the pass.
    assert "a guest of the team" in browser(people["bob"], studio).get(reverse("history")).content.decode()
    alice = browser(people["alice"], studio)
    assert "Team demo" in alice.get(reverse("keys")).content.decode()
    assert alice.post(reverse("pass-revoke", args=[demo.pk])).status_code == 302
    assert AuditEntry.objects.filter(team=studio, action="pass.revoked").exists()
    # Nobody's personal workspace lists it.
    assert "Team demo" not in browser(people["carol"]).get(reverse("keys")).content.decode()


def test_a_member_makes_no_pass_and_sees_none(studio, people):
    team_pass(browser(people["carol"], studio))
    bob = browser(people["bob"], studio)
    page = bob.get(reverse("keys")).content.decode()
    assert "Team demo" not in page and 'id="demo-passes"' not in page
    refused = bob.post(
        reverse("pass-create"), {"name": "mine", "models": [SEED], "spend_cap": "1", "hours": "2"}
    )
    assert refused.status_code == 404 and not DemoPass.objects.filter(name="mine").exists()
    demo = DemoPass.objects.get()
    assert bob.post(reverse("pass-revoke", args=[demo.pk])).status_code == 404
    assert DemoPass.objects.get().revoked_at is None


def test_a_team_pass_spends_within_the_teams_budget(studio, people):
    studio.budget = Decimal("0.0001")
    studio.save()
    guest = guest_of(team_pass(browser(people["carol"], studio)))
    response = guest.post(reverse("play", args=[SEED]), {**seed_input(), "form_token": ""})
    html = response.content.decode()
    assert response.status_code == 422, html
    assert "the team&#x27;s budget" in html, re.findall(r"would go over[^<]*", html)


def test_removing_a_member_revokes_the_passes_they_made_for_the_team(studio, people):
    demo = team_pass(browser(people["carol"], studio))
    guest = guest_of(demo)
    remove_member(studio, people["carol"])
    demo.refresh_from_db()
    assert demo.status == "revoked"
    response = guest.get(reverse("play", args=[SEED]))
    assert response.status_code == 403 and "revoked" in response.content.decode()


# --- What people meet on the way ------------------------------------------------------------------------


def test_switching_from_a_team_forms_answer_or_a_filtered_page_lands_on_a_page_of_the_new_workspace(
    studio, people
):
    carol = browser(people["carol"], studio)
    assert carol.post(reverse("workspace"), {"team": "", "next": "/team/invites"})["Location"] == "/team"
    landed = carol.post(reverse("workspace"), {"team": "studio", "next": "/history?member=bob&page=2"})
    assert landed["Location"] == "/history"


def test_an_invite_link_shown_once_after_its_redirect(studio, people):
    alice = browser(people["alice"], studio)
    made = alice.post(reverse("team-invite-create"), {"role": "member", "hours": 1})
    assert made.status_code == 302 and made["Location"] == "/team#invites"
    first = alice.get(reverse("team")).content.decode()
    assert 'id="invite-link"' in first
    assert 'id="invite-link"' not in alice.get(reverse("team")).content.decode()  # a reload: gone
    assert Invite.objects.count() == 1


def test_an_invite_opened_by_someone_in_the_team_already_says_so_and_stays_unused(studio, people):
    link = make_invite(browser(people["alice"], studio))
    html = browser(people["bob"]).get(link).content.decode()
    assert "You are in <strong>Studio</strong> already, as member" in html and "Join as" not in html
    assert Invite.objects.get().used_at is None


def test_someone_joining_by_invite_is_welcomed_into_the_teams_workspace(studio, people):
    link = make_invite(browser(people["alice"], studio))
    newcomer = Client()
    newcomer.post(link, {"username": "erin", "password1": PASSWORD, "password2": PASSWORD})
    assert "Welcome to Studio" in newcomer.get(reverse("home"), follow=True).content.decode()


def test_with_sign_up_closed_people_are_told_how_to_get_an_account(people):
    page = Client().get(reverse("signup"))
    assert page.status_code == 404 and "ask a team" in page.content.decode().lower()
    assert "invite link" in Client().get(reverse("login")).content.decode()


def test_the_sole_owner_is_not_offered_leave_and_an_admin_cannot_touch_an_owners_budget(studio, people):
    page = browser(people["alice"], studio).get(reverse("team")).content.decode()
    alice_row = page.split('data-member="alice"')[1].split("</tr>")[0]
    assert "Leave" not in alice_row
    carol = browser(people["carol"], studio)
    carol_view = carol.get(reverse("team")).content.decode().split('data-member="alice"')[1].split("</tr>")[0]
    assert "Change" not in carol_view and "Remove" not in carol_view
    refused = carol.post(reverse("team-member-budget", args=[people["alice"].pk]), {"budget": "0"})
    assert refused.status_code == 403 and "Only an owner" in refused.content.decode()
    assert Membership.objects.get(user=people["alice"]).budget is None


def test_budgets_take_amounts_as_people_write_them(studio, people):
    alice = browser(people["alice"], studio)
    assert alice.post(reverse("team-budget"), {"budget": " $1,250.40 "}).status_code == 302
    studio.refresh_from_db()
    assert studio.budget == Decimal("1250.40")


def test_a_teams_task_page_says_who_ran_it_and_the_filter_keeps_those_who_left(studio, people):
    task = generate(browser(people["bob"], studio), "bob was here")
    alice = browser(people["alice"], studio)
    assert 'class="muted run-by">by bob<' in alice.get(reverse("task", args=[task.pk])).content.decode()
    remove_member(studio, people["bob"])
    html = alice.get(reverse("history")).content.decode()
    assert '<option value="bob"' in html


def test_the_teams_webhook_secret_is_shown_to_its_admins_only(studio, people):
    from playground.keys.webhook_secrets import current_webhook_secret

    carol = browser(people["carol"], studio)
    html = carol.post(reverse("webhook-secret-reveal"), headers={"HX-Request": "true"}).content.decode()
    assert current_webhook_secret(people["carol"].pk, studio.pk) in html
    assert current_webhook_secret(people["carol"].pk) not in html  # not her own
    bob = browser(people["bob"], studio)
    assert bob.post(reverse("webhook-secret-reveal")).status_code == 404
    assert bob.post(reverse("webhook-secret-rotate")).status_code == 404
    assert 'id="webhook-secret"' not in bob.get(reverse("keys")).content.decode()
