"""Making teams and changing who is in them. Each change is written to the team's audit log in
its transaction; every save or delete of a membership also empties the process's cache of API
keys (`keys.services.key_or_account_changed`), so a member removed stops reaching the team through
a key of theirs within a second everywhere, at once here."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from playground.keys import audit
from playground.keys.models import DemoPass

from .models import MANAGERS, Invite, Membership, Role, Team

INVITE_USED = "This invite has been used already. Ask the team's admin for a new one."
INVITE_ENDED = "This invite has expired or was withdrawn. Ask the team's admin for a new one."


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
        if role not in MANAGERS:
            _withdraw_invites_made_by(team, user, "its maker is no longer an admin", by)
    return membership


@transaction.atomic
def remove_member(team: Team, user: AbstractBaseUser, by: audit.By = audit.By()) -> None:  # noqa: B008
    """Take `user` out of `team`: their next request reaches none of its tasks, the keys they were
    issued for it stop working (401 key_disabled), and the demo passes they made for it are
    revoked. Their tasks stay the team's."""
    lock_team(team)
    membership = Membership.objects.filter(team=team, user=user).first()
    if membership is None:
        raise TeamError(f"{user.get_username()} is not a member of {team.slug}.")
    if membership.role == Role.OWNER and not other_owners(team, user):
        raise TeamError("A team keeps at least one owner: make someone else owner first.")
    membership.delete()
    audit.record(team_owner_id(team), "member.removed", user.get_username(), by=by, team_id=team.pk)
    # The demo passes they made for the team end with their membership: a guest's task is made in
    # the name of the pass's maker, who must be in the team to spend its money.
    for demo_pass in DemoPass.objects.filter(team=team, owner=user, revoked_at=None):
        demo_pass.revoked_at = timezone.now()
        demo_pass.save(update_fields=["revoked_at"])
        subject = f"demo pass “{demo_pass.name}”"
        audit.record(team_owner_id(team), "pass.revoked", subject, "its maker left", by=by, team_id=team.pk)
    _withdraw_invites_made_by(team, user, "its maker left the team", by)


def _withdraw_invites_made_by(team: Team, user: AbstractBaseUser, why: str, by: audit.By) -> None:
    """Someone who may no longer invite (removed, or no longer an admin) leaves no open invite
    link behind: one kept would let them, or whoever they hand it to, in again (as an admin)."""
    now = timezone.now()
    pending = Invite.objects.filter(team=team, created_by=user, used_at=None, revoked_at=None)
    owner_id = team_owner_id(team)
    for invite_id in pending.filter(expires_at__gt=now).values_list("pk", flat=True):
        audit.record(owner_id, "invite.revoked", f"invite {invite_id}", why, by=by, team_id=team.pk)
    pending.update(revoked_at=now)


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


def team_members(team_id, *, with_tasks=None) -> list[str]:
    """The usernames of the team's members, in order, and with `with_tasks` (the team's tasks) also
    those who ran any of them and have left since: the history's filter, which finds their tasks."""
    names = set(Membership.objects.filter(team_id=team_id).values_list("user__username", flat=True))
    if with_tasks is not None:
        names |= set(with_tasks.values_list("owner__username", flat=True).distinct())
    return sorted(names)


def teams_of(user_id) -> list[Membership]:
    """The person's memberships with their teams, by team name: the workspace switcher."""
    return list(Membership.objects.filter(user_id=user_id).select_related("team").order_by("team__name"))


# --- Invites ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedInvite:
    invite: Invite
    token: str  # in the link, shown once; only its hash is stored


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def create_invite(team: Team, role: str, hours: int, by: audit.By = audit.By()) -> IssuedInvite:  # noqa: B008
    """A single-use link into `team` in `role` (member or admin), valid for `hours`."""
    if role not in (Role.MEMBER, Role.ADMIN):
        raise TeamError("An invite makes a member or an admin.")
    token = secrets.token_urlsafe(24)
    invite = Invite.objects.create(
        team=team,
        role=role,
        token_hash=_token_hash(token),
        created_by=by.actor if by.actor is not None and by.actor.is_authenticated else None,
        expires_at=timezone.now() + timedelta(hours=hours),
    )
    detail = f"{role}, valid {hours} h"
    audit.record(team_owner_id(team), "member.invited", f"invite {invite.pk}", detail, by=by, team_id=team.pk)
    return IssuedInvite(invite, token)


def invite_for_token(token: str) -> Invite:
    """The open invite a link names, or TeamError saying why it is not (used, expired, withdrawn,
    or never was: the same words as expired, so a guess learns nothing)."""
    invite = Invite.objects.select_related("team").filter(token_hash=_token_hash(token)).first()
    if invite is None:
        raise TeamError(INVITE_ENDED)
    if invite.used_at is not None:
        raise TeamError(INVITE_USED)
    if not invite.is_open:
        raise TeamError(INVITE_ENDED)
    return invite


@transaction.atomic
def accept_invite(token: str, user: AbstractBaseUser, by: audit.By = audit.By()) -> Membership:  # noqa: B008
    """Make `user` a member through the invite `token` names, once: two people opening one link at
    once, or one pressing twice, use it once (the row is locked and read again). Someone already
    in the team keeps their role (an invite never demotes an owner) and the invite stays unused."""
    invite = invite_for_token(token)
    invite = Invite.objects.select_for_update().get(pk=invite.pk)
    if invite.used_at is not None:
        raise TeamError(INVITE_USED)
    if not invite.is_open:
        raise TeamError(INVITE_ENDED)
    existing = Membership.objects.filter(team_id=invite.team_id, user=user).first()
    if existing is not None:
        return existing
    membership = add_member(invite.team, user, invite.role, by=by)
    invite.used_at, invite.used_by = timezone.now(), user
    invite.save(update_fields=["used_at", "used_by"])
    return membership


@transaction.atomic
def revoke_invite(invite: Invite, by: audit.By = audit.By()) -> None:  # noqa: B008
    updated = Invite.objects.filter(pk=invite.pk, used_at=None, revoked_at=None).update(
        revoked_at=timezone.now()
    )
    if updated:
        team = invite.team
        audit.record(team_owner_id(team), "invite.revoked", f"invite {invite.pk}", by=by, team_id=team.pk)


# --- Roles and budgets ------------------------------------------------------------------------------

ONLY_MANAGERS = "Only the team's owners and admins can do this."
ONLY_OWNERS = "Only an owner can make someone an owner, or change or remove an owner."


def role_change_refused(actor_role: str, target_role: str | None, new_role: str | None) -> str | None:
    """Why a person in `actor_role` may not move someone from `target_role` (None: not in the team)
    to `new_role` (None: out of it), or None when they may. The one rule for the members page:
    members change nobody; admins add, remove and promote members and admins; only owners touch
    owners."""
    if actor_role not in (Role.OWNER, Role.ADMIN):
        return ONLY_MANAGERS
    if actor_role != Role.OWNER and Role.OWNER in (target_role, new_role):
        return ONLY_OWNERS
    return None


def _limit(budget: Decimal | None, period: str) -> str:
    return f"${budget:,.2f} {period or 'in all'}" if budget is not None else "no budget"


@transaction.atomic
def set_team_budget(team: Team, budget: Decimal | None, period: str, by: audit.By = audit.By()) -> None:  # noqa: B008
    lock_team(team)
    team.budget, team.budget_period = budget, period if budget is not None else ""
    team.save(update_fields=["budget", "budget_period"])
    detail = _limit(team.budget, team.budget_period)
    audit.record(team_owner_id(team), "budget.changed", f"team {team.slug}", detail, by=by, team_id=team.pk)


@transaction.atomic
def set_member_budget(
    membership: Membership,
    budget: Decimal | None,
    period: str,
    by: audit.By = audit.By(),  # noqa: B008
) -> None:
    team = membership.team
    lock_team(team)
    membership.budget, membership.budget_period = budget, period if budget is not None else ""
    membership.save(update_fields=["budget", "budget_period"])
    detail = _limit(membership.budget, membership.budget_period)
    subject = membership.user.get_username()
    audit.record(team_owner_id(team), "budget.changed", subject, detail, by=by, team_id=team.pk)
