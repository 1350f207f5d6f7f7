"""Making teams and changing who is in them. Each change is written to the team's audit log in
its transaction; every save or delete of a membership also empties the process's cache of API
keys (`keys.services.key_or_account_changed`), so a member removed stops reaching the team through
a key of theirs within a second everywhere, at once here."""

from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from playground.keys import audit

from .models import Membership, Role, Team


class TeamError(Exception):
    """A team change refused, with the reason in plain words."""


@transaction.atomic
def create_team(
    slug: str,
    owner: AbstractBaseUser,
    name: str = "",
    budget: Decimal | None = None,
    budget_period: str = "",
    by: audit.By = audit.By(),  # noqa: B008
) -> Team:
    """A team with `owner` as its first member (role owner)."""
    try:
        with transaction.atomic():
            team = Team.objects.create(
                slug=slug, name=name or slug, budget=budget, budget_period=budget_period if budget else ""
            )
    except IntegrityError:
        raise TeamError(f"A team named {slug!r} exists already.") from None
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    limit = f"budget ${budget:,.2f} {budget_period or 'in all'}" if budget is not None else "no budget"
    audit.record(owner.pk, "team.created", f"team {slug}", limit, by=by, team_id=team.pk)
    return team


@transaction.atomic
def add_member(
    team: Team,
    user: AbstractBaseUser,
    role: str = Role.MEMBER,
    by: audit.By = audit.By(),  # noqa: B008
) -> Membership:
    """Add `user` to `team` in `role`, or change the role of one who is in it already."""
    lock_team(team)
    membership, created = Membership.objects.get_or_create(team=team, user=user, defaults={"role": role})
    if created:
        audit.record(team_owner_id(team), "member.added", user.get_username(), role, by=by, team_id=team.pk)
    elif membership.role != role:
        if membership.role == Role.OWNER and not other_owners(team, user):
            raise TeamError("A team keeps at least one owner: make someone else owner first.")
        old, membership.role = membership.role, role
        membership.save(update_fields=["role"])
        detail = f"{old} -> {role}"
        audit.record(
            team_owner_id(team), "member.role_changed", user.get_username(), detail, by=by, team_id=team.pk
        )
    return membership


@transaction.atomic
def remove_member(team: Team, user: AbstractBaseUser, by: audit.By = audit.By()) -> None:  # noqa: B008
    """Take `user` out of `team`: their next request reaches none of its tasks, and the keys they
    were issued for it stop working (401 key_disabled). Their tasks stay the team's."""
    lock_team(team)
    membership = Membership.objects.filter(team=team, user=user).first()
    if membership is None:
        raise TeamError(f"{user.get_username()} is not a member of {team.slug}.")
    if membership.role == Role.OWNER and not other_owners(team, user):
        raise TeamError("A team keeps at least one owner: make someone else owner first.")
    membership.delete()
    audit.record(team_owner_id(team), "member.removed", user.get_username(), by=by, team_id=team.pk)


def lock_team(team: Team) -> None:
    """Changes of one team's members one at a time (the row locked until the transaction ends; on
    SQLite its IMMEDIATE transactions already do): two owners leaving, or one demoted while the other
    leaves, at once would each see the other still there and leave the team with no owner."""
    Team.objects.select_for_update().filter(pk=team.pk).values_list("pk", flat=True).first()


def other_owners(team: Team, user: AbstractBaseUser) -> bool:
    return Membership.objects.filter(team=team, role=Role.OWNER).exclude(user=user).exists()


def team_owner_id(team: Team):
    return (
        Membership.objects.filter(team=team, role=Role.OWNER)
        .order_by("created_at")
        .values_list("user_id", flat=True)
        .first()
    )


def is_member(team_id, user_id) -> bool:
    return Membership.objects.filter(team_id=team_id, user_id=user_id).exists()
