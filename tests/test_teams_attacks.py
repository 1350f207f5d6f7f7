"""Attacks on teams: what a repeated Idempotency-Key, a removed member and two owners leaving at once
must never do (hand one workspace's task to another, leave a team without an owner)."""

import contextlib
from functools import partial

import pytest
from django.contrib.auth import get_user_model

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
