"""Demo passes: signed, time-boxed, revocable links for guests (see `DemoPass`)."""

import secrets
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from playground.keys import audit
from playground.keys.models import DemoPass

SALT = "playground.demo-pass"
# Why a pass that is not active can no longer be used, by its status.
PASS_ENDED = {
    "revoked": "This demo pass was revoked by its owner.",
    "expired": "This demo pass has expired.",
}


class PassRefused(Exception):
    """The pass cannot be used; the message says why in plain words."""


@transaction.atomic
def create_pass(
    owner: AbstractBaseUser,
    name: str,
    model_slugs: list[str],
    spend_cap: Decimal,
    hours: int,
    *,
    allow_sharing: bool = False,
    team=None,
    by: audit.By = audit.By(),  # noqa: B008
) -> DemoPass:
    """A pass of `owner`'s, or with `team` one of that team's (`owner` its admin making it)."""
    demo_pass = DemoPass.objects.create(
        owner=owner,
        team=team,
        name=name,
        public_id=secrets.token_urlsafe(12),
        model_slugs=list(model_slugs),
        spend_cap=spend_cap,
        expires_at=timezone.now() + timedelta(hours=hours),
        allow_sharing=allow_sharing,
    )
    detail = f"cap ${spend_cap:,.2f}, {hours} h, models: {', '.join(model_slugs)}"
    if allow_sharing:
        detail += ", guests may share"
    team_id = team.pk if team is not None else None
    audit.record(owner.pk, "pass.created", f"demo pass “{name}”", detail, by=by, team_id=team_id)
    return demo_pass


def still_active(passes: QuerySet[DemoPass]) -> QuerySet[DemoPass]:
    """Those of `passes` that guests can still use (neither revoked nor expired), newest first."""
    return passes.filter(revoked_at__isnull=True, expires_at__gt=timezone.now()).order_by("-created_at")


def pass_token(demo_pass: DemoPass) -> str:
    """The part of the link that names the pass; signed so nobody can guess or forge one."""
    return signing.Signer(salt=SALT).sign(demo_pass.public_id)


def pass_for_token(token: str) -> DemoPass:
    try:
        public_id = signing.Signer(salt=SALT).unsign(token)
    except signing.BadSignature as exc:
        raise PassRefused("This demo link is not valid.") from exc
    return usable_pass(public_id)


def usable_pass(public_id: str) -> DemoPass:
    demo_pass = DemoPass.objects.select_related("owner").filter(public_id=public_id).first()
    if demo_pass is None:
        raise PassRefused("This demo link is not valid.")
    if demo_pass.status in PASS_ENDED:
        raise PassRefused(PASS_ENDED[demo_pass.status])
    if not demo_pass.owner.is_active:
        raise PassRefused("This demo pass is no longer available.")
    return demo_pass


@transaction.atomic
def revoke_pass(demo_pass: DemoPass, by: audit.By = audit.By()) -> None:  # noqa: B008
    demo_pass.revoked_at = timezone.now()
    demo_pass.save(update_fields=["revoked_at"])
    subject = f"demo pass “{demo_pass.name}”"
    audit.record(demo_pass.owner_id, "pass.revoked", subject, by=by, team_id=demo_pass.team_id)
