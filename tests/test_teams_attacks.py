"""Attacks on teams: what a repeated Idempotency-Key, a removed member and two owners leaving at once
must never do (hand one workspace's task to another, leave a team without an owner)."""

import contextlib
from functools import partial

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError
from django.test import Client
from django.urls import reverse

from playground.teams.models import Membership, Role
from playground.teams.services import TeamError, add_member, create_team, remove_member

from .helpers import at_once
from .test_teams import command, keys, people, teams  # noqa: F401 (fixtures)


def test_a_personal_key_replaying_an_idempotency_key_never_gets_the_teams_task(keys):  # noqa: F811
    team_task = keys["bob@studio"].submit(prompt="team only", headers={"Idempotency-Key": "order-7"})
    assert team_task.status_code == 201
    replay = keys["bob"].submit(prompt="team only", headers={"Idempotency-Key": "order-7"})
    assert replay.status_code == 409, replay.json()
    assert replay.json()["error"]["code"] == "idempotency_key_reused"
    assert team_task.json()["task_id"] not in replay.content.decode()


def test_a_removed_member_cannot_read_the_teams_task_back_through_an_idempotency_key(
    keys,  # noqa: F811
    teams,  # noqa: F811
    people,  # noqa: F811
):
    made = keys["bob@studio"].submit(prompt="secret plan", headers={"Idempotency-Key": "plan"}).json()
    remove_member(teams["studio"], people["bob"])
    replay = keys["bob"].submit(prompt="secret plan", headers={"Idempotency-Key": "plan"})
    assert replay.status_code == 409
    assert made["task_id"] not in replay.content.decode()


def test_a_team_key_replaying_a_personal_idempotency_key_never_gets_the_personal_task(keys):  # noqa: F811
    own = keys["bob"].submit(prompt="my own", headers={"Idempotency-Key": "mine"})
    assert own.status_code == 201
    replay = keys["bob@studio"].submit(prompt="my own", headers={"Idempotency-Key": "mine"})
    assert replay.status_code == 409
    assert own.json()["task_id"] not in replay.content.decode()
    # Each workspace still replays its own.
    again = keys["bob"].submit(prompt="my own", headers={"Idempotency-Key": "mine"})
    assert again.status_code == 200 and again.json()["task_id"] == own.json()["task_id"]


def each_at_once(*changes) -> None:
    """Run each team change in its own thread, all released together; a refusal is an answer."""
    pending = iter(changes)

    def run() -> None:
        with contextlib.suppress(TeamError):
            next(pending)()

    at_once(run, len(changes))


def two_owners(name: str):
    make = get_user_model().objects.create_user
    first, second = make(f"{name}-first"), make(f"{name}-second")
    team = create_team(name, first)
    add_member(team, second, Role.OWNER)
    return team, first, second


ROUNDS = 8  # the race is lost most rounds on PostgreSQL without the lock


@pytest.mark.django_db(transaction=True)
def test_two_owners_leaving_at_once_never_leave_the_team_without_an_owner(catalog):
    for round_ in range(ROUNDS):
        team, first, second = two_owners(f"race-{round_}")
        each_at_once(partial(remove_member, team, first), partial(remove_member, team, second))
        assert Membership.objects.filter(team=team, role=Role.OWNER).count() == 1, round_


@pytest.mark.django_db(transaction=True)
def test_an_owner_demoted_while_the_other_owner_leaves_never_leaves_the_team_without_an_owner(catalog):
    for round_ in range(ROUNDS):
        team, first, second = two_owners(f"demote-{round_}")
        each_at_once(partial(add_member, team, first, Role.MEMBER), partial(remove_member, team, second))
        assert Membership.objects.filter(team=team, role=Role.OWNER).count() == 1, round_


def test_no_browser_page_personal_key_or_other_team_reaches_a_teams_task_or_its_files(
    keys,  # noqa: F811
    people,  # noqa: F811
):
    task_id = keys["bob@studio"].submit(prompt="team result").json()["task_id"]
    made = keys["alice@studio"].get(f"/api/v1/tasks/{task_id}").json()
    assert made["status"] == "succeeded"
    file_url = made["output"]["images"][0]["url"] if "images" in made["output"] else None
    file_url = file_url or next(iter(made["output"].values()))[0]["url"]
    bare_file = file_url.split("?")[0].split("://", 1)[-1]
    bare_file = bare_file[bare_file.index("/") :]
    assert (
        keys["alice@studio"]
        .client.get(bare_file, headers={"Authorization": f"Bearer {keys['alice@studio'].key}"})
        .status_code
        == 200
    )
    for name in ("bob", "carol"):  # bob is in the team, but his browser is his personal workspace
        browser = Client()
        browser.force_login(people[name])
        for method, path in (
            ("get", reverse("task", args=[task_id])),
            ("get", reverse("task-thumb", args=[task_id])),
            ("get", reverse("task-zip", args=[task_id])),
            ("post", reverse("task-cancel", args=[task_id])),
            ("post", reverse("task-share", args=[task_id])),
            ("post", reverse("task-unshare", args=[task_id])),
            ("get", reverse("play", args=["gemini-3-pro-image-preview-official"]) + f"?from={task_id}"),
            ("get", bare_file),
        ):
            assert getattr(browser, method)(path).status_code == 404, (name, path)
        poll = browser.get(
            reverse("task", args=[task_id]), headers={"HX-Request": "true", "If-None-Match": '"x"'}
        )
        assert poll.status_code == 286 and "no longer available" in poll.content.decode()  # the poll stops
        assert (
            "team result"
            not in browser.get(reverse("compare") + f"?ids={task_id}&ids={task_id}").content.decode()
        )
    for outsider in ("bob", "carol@agency"):
        api = keys[outsider]
        assert api.client.get(bare_file, headers={"Authorization": f"Bearer {api.key}"}).status_code == 404
        assert api.post(f"/api/v1/tasks/{task_id}/share").status_code == 404
        listed = api.get(
            "/api/v1/tasks", {"model": "gemini-3-pro-image-preview-official", "status": "succeeded"}
        )
        assert task_id not in listed.content.decode()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("create_team", "long", "--owner", "alice", "--name", "x" * 101), "--name"),
        (("create_team", "a_b", "--owner", "alice"), "SLUG must be"),
        (("create_team", "x" * 51, "--owner", "alice"), "SLUG must be"),
        (("add_member", "studio", "alice", "--role", "member"), "keeps at least one owner"),
        (("add_member", "studio", "nobody"), "No user named 'nobody'"),
        (("remove_member", "studio", "nobody"), "No user named 'nobody'"),
    ],
)
def test_team_commands_refuse_bad_input_with_a_message_not_a_traceback(teams, args, message):  # noqa: F811
    with pytest.raises(CommandError, match=message):
        command(*args)
    assert Membership.objects.filter(team=teams["studio"], role=Role.OWNER).count() == 1
