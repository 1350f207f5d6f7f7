"""Teams through the API and the commands: a key issued for a team acts for it (its tasks are the
team's, it sees every member's), a personal key never sees a team's tasks, nobody outside a team
reaches them, a member removed loses the team at their next request, and the team's budget, the
member's budget in it and the key's budget apply together, each refusal naming its limit."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from playground.generations.models import Task
from playground.keys.models import ApiKey, AuditEntry
from playground.keys.periods import period_start
from playground.keys.services import issue_key
from playground.teams.models import Membership, Team
from playground.teams.services import add_member, create_team, remove_member

from .helpers import Api, submits_at_once


def command(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def people(db):
    make = get_user_model().objects.create_user
    return {name: make(name, password=f"{name}-password-1") for name in ("alice", "bob", "carol")}


@pytest.fixture
def teams(people, catalog):
    """Team "studio": alice (owner) and bob (member). Team "agency": carol (owner)."""
    command("create_team", "studio", "--owner", "alice")
    command("add_member", "studio", "bob")
    command("create_team", "agency", "--owner", "carol")
    return {slug: Team.objects.get(slug=slug) for slug in ("studio", "agency")}


@pytest.fixture
def keys(teams, client, django_capture_on_commit_callbacks):
    def api(username, *team):
        secret = command(
            "issue_key",
            username,
            "--name",
            f"{username}-{team[0] if team else 'own'}",
            *(("--team", team[0]) if team else ()),
        )
        return Api(client, secret, django_capture_on_commit_callbacks)

    return {
        "alice@studio": api("alice", "studio"),
        "bob@studio": api("bob", "studio"),
        "bob": api("bob"),
        "carol@agency": api("carol", "agency"),
    }


# --- Commands ----------------------------------------------------------------------------------------


def test_the_commands_make_a_team_with_its_owner_and_members(teams, people):
    assert {(m.user.username, m.role) for m in Membership.objects.filter(team=teams["studio"])} == {
        ("alice", "owner"),
        ("bob", "member"),
    }
    assert command("add_member", "studio", "bob", "--role", "admin") == "bob is admin of studio."
    assert Membership.objects.get(team=teams["studio"], user=people["bob"]).role == "admin"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create_team", "Bad Slug", "--owner", "alice"), "SLUG must be"),
        (("create_team", "studio", "--owner", "alice"), "exists already"),
        (("create_team", "new", "--owner", "nobody"), "No user named 'nobody'"),
        (("add_member", "nope", "bob"), "No team named 'nope'"),
        (("issue_key", "carol", "--team", "studio"), "carol is not in the team studio"),
        (("remove_member", "studio", "alice"), "keeps at least one owner"),
        (("remove_member", "agency", "bob"), "bob is not a member of agency"),
    ],
)
def test_the_commands_refuse_clearly(teams, args, message):
    with pytest.raises(CommandError, match=message):
        command(*args)


# --- Who reaches what -----------------------------------------------------------------------------------


def test_a_team_key_makes_the_teams_tasks_and_every_member_sees_them_with_who_ran_them(keys, teams):
    made = keys["bob@studio"].submit(prompt="bob's banner").json()
    assert made["created_by"] == "bob"
    task = Task.objects.get(pk=made["task_id"])
    assert task.team == teams["studio"] and task.owner.username == "bob"
    alice = keys["alice@studio"]
    seen = alice.get(f"/api/v1/tasks/{task.pk}").json()
    assert seen["created_by"] == "bob" and seen["status"] == task.status
    assert [t["task_id"] for t in alice.get("/api/v1/tasks").json()["data"]] == [task.pk]
    assert alice.get(f"/api/v1/tasks/{task.pk}/events").status_code == 200


def test_a_personal_key_and_another_team_reach_none_of_a_teams_tasks(keys):
    team_task = keys["bob@studio"].submit(prompt="team work").json()["task_id"]
    own_task = keys["bob"].submit(prompt="bob's own").json()["task_id"]
    for outsider in ("bob", "carol@agency"):
        api = keys[outsider]
        for path in (f"/api/v1/tasks/{team_task}", f"/api/v1/tasks/{team_task}/events"):
            assert api.get(path).status_code == 404, (outsider, path)
        assert api.post(f"/api/v1/tasks/{team_task}/cancel").status_code == 404
        assert team_task not in [t["task_id"] for t in api.get("/api/v1/tasks").json()["data"]]
    # And the team reaches none of a member's own tasks.
    assert keys["alice@studio"].get(f"/api/v1/tasks/{own_task}").status_code == 404
    assert [t["task_id"] for t in keys["bob"].get("/api/v1/tasks").json()["data"]] == [own_task]


def test_a_teams_tasks_stay_out_of_its_members_personal_pages(keys, people):
    team_task = keys["bob@studio"].submit(prompt="a team-only banner").json()["task_id"]
    browser = Client()
    browser.force_login(people["bob"])
    assert "a team-only banner" not in browser.get(reverse("history")).content.decode()
    assert browser.get(reverse("task", args=[team_task])).status_code == 404
    assert "team-only" not in browser.get(reverse("usage")).content.decode()


def test_a_removed_member_loses_the_team_at_the_next_request_and_their_tasks_stay(keys, teams, people):
    task_id = keys["bob@studio"].submit(prompt="made before leaving").json()["task_id"]
    remove_member(teams["studio"], people["bob"])
    refused = keys["bob@studio"].get(f"/api/v1/tasks/{task_id}")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "key_disabled"
    assert "no longer a member" in refused.json()["error"]["message"]
    assert keys["bob@studio"].submit(prompt="after").status_code == 401
    assert keys["alice@studio"].get(f"/api/v1/tasks/{task_id}").json()["created_by"] == "bob"
    assert keys["bob"].get("/api/v1/models").status_code == 200  # his own key is his own
    add_member(teams["studio"], people["bob"])  # back in: the key works again
    assert keys["bob@studio"].get(f"/api/v1/tasks/{task_id}").status_code == 200


# --- Budgets at every level ------------------------------------------------------------------------------


def test_the_teams_monthly_budget_counts_every_member_and_names_itself(keys, teams):
    Team.objects.filter(pk=teams["studio"].pk).update(budget=Decimal("0.25"), budget_period="month")
    assert keys["alice@studio"].submit(prompt="one").status_code == 201
    assert keys["bob@studio"].submit(prompt="two").status_code == 201
    refused = keys["bob@studio"].submit(prompt="three")
    assert refused.status_code == 402
    assert refused.json()["error"]["message"] == (
        "This task (about $0.1206) would go over the team's monthly budget: $0.0088 of $0.25 is left."
    )
    assert keys["bob"].submit(prompt="his own money").status_code == 201  # not the team's
    Task.objects.filter(team=teams["studio"]).update(created_at=period_start("month") - timedelta(days=1))
    assert keys["bob@studio"].submit(prompt="next month").status_code == 201


def test_a_members_budget_in_the_team_stops_only_them(keys, teams, people):
    Membership.objects.filter(team=teams["studio"], user=people["bob"]).update(budget=Decimal("0.13"))
    assert keys["bob@studio"].submit(prompt="one").status_code == 201
    refused = keys["bob@studio"].submit(prompt="two")
    assert refused.status_code == 402
    assert (
        "would go over your budget in the team: $0.0094 of $0.13 is left."
        in refused.json()["error"]["message"]
    )
    assert keys["alice@studio"].submit(prompt="alice goes on").status_code == 201


def test_the_key_the_member_and_the_team_limits_apply_together_the_first_passed_is_named(keys, teams, people):
    Team.objects.filter(pk=teams["studio"].pk).update(budget=Decimal(10))
    Membership.objects.filter(team=teams["studio"], user=people["bob"]).update(budget=Decimal(10))
    ApiKey.objects.filter(name="bob-studio").update(budget=Decimal("0.13"))
    assert keys["bob@studio"].submit(prompt="one").status_code == 201
    message = keys["bob@studio"].submit(prompt="two").json()["error"]["message"]
    assert "the key's budget" in message


@pytest.mark.django_db(transaction=True)
def test_sixteen_concurrent_submits_from_four_members_never_overspend_the_team(catalog, queue_only):
    make = get_user_model().objects.create_user
    owner = make("owner", password="owner-password-1")
    team = create_team("crowd", owner, budget=Decimal("0.3618"))  # exactly three 1K images
    members = [owner] + [make(f"m{i}", password=f"m{i}-password-1") for i in range(3)]
    for member in members[1:]:
        add_member(team, member)
    secrets = [issue_key(member, team=team).secret for member in members]
    assert submits_at_once(secrets, 16) == [201] * 3 + [402] * 13
    assert Task.objects.filter(team=team).count() == 3


# --- The team's audit log -------------------------------------------------------------------------------


def test_team_changes_go_to_the_teams_log_not_a_persons_own(keys, teams, people):
    remove_member(teams["studio"], people["bob"])
    studio = AuditEntry.objects.filter(team=teams["studio"]).order_by("created_at", "id")
    assert [(e.action, e.subject) for e in studio] == [
        ("team.created", "team studio"),
        ("member.added", "bob"),
        ("key.created", studio.filter(action="key.created").first().subject),
        ("key.created", studio.filter(action="key.created").last().subject),
        ("member.removed", "bob"),
    ]
    browser = Client()
    browser.force_login(people["alice"])
    page = browser.get(reverse("keys")).content.decode()
    assert "member.removed" not in page  # alice's own log, not the team's (its page comes with teams' UI)


def test_a_team_keys_later_changes_go_to_the_teams_log_as_its_creation_did(keys, teams, people):
    from playground.keys.services import delete_key, roll_key, set_key_disabled

    key = ApiKey.objects.get(name="bob-studio")
    set_key_disabled(key, True)
    set_key_disabled(key, False)
    roll_key(key, timedelta(0))
    delete_key(key)
    team_log = AuditEntry.objects.filter(team=teams["studio"], subject__contains="bob-studio")
    assert sorted(team_log.values_list("action", flat=True)) == sorted(
        ["key.created", "key.disabled", "key.enabled", "key.rolled", "key.deleted"]
    )
    assert not AuditEntry.objects.filter(team=None, subject__contains="bob-studio").exists()
