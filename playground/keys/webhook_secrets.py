"""Webhook signing secrets: one per workspace (a person's own, or a team's), in the Standard
Webhooks format, encrypted at rest.

A secret is `whsec_` + base64 of 24 random bytes (https://www.standardwebhooks.com; 192 bits, like
the spec's examples, and no base64 padding, so its last four characters tell it apart), made the first
time it is needed (revealed on the Keys page, or a webhook of the owner's is sent), and stored
encrypted with the MultiFernet of `keys.credentials` (so `rotate_upstream_keys` re-encrypts it too).

Rotating makes a new current secret; the old one keeps signing beside it for
PLAYGROUND_WEBHOOK_SECRET_GRACE seconds, so a receiver that still has it keeps verifying while its
owner updates it. At most `MAX_RETIRED` old secrets sign at once: rotating more often than that
within a grace period ends the oldest one's grace at once.

A secret is never logged, and never shown but to its owner, on request (see `web.account_views`).
"""

import base64
import logging
import secrets
from datetime import timedelta

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from . import audit
from .credentials import fernet, reencrypt
from .models import WebhookSecret

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
SECRET_BYTES = 24
MAX_RETIRED = 3
UNREADABLE = (
    "Your webhook signing secret cannot be decrypted with the server's encryption keys: rotate it "
    "on the Keys page (and give the new one to your receiver)."
)


class WebhookSecretUnreadable(Exception):
    """The owner's current secret cannot be decrypted (the Fernet key that encrypted it was dropped)."""


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _encrypted(secret: str) -> dict:
    return {"secret_encrypted": fernet().encrypt(secret.encode()).decode(), "last4": secret[-4:]}


def _decrypted(row: WebhookSecret) -> str:
    try:
        return fernet().decrypt(row.secret_encrypted.encode()).decode()
    except InvalidToken:
        logger.error("webhook secret %s (owner %s) cannot be decrypted", row.pk, row.owner_id)
        raise WebhookSecretUnreadable(UNREADABLE) from None


def _held(owner_id, team_id=None):
    """A workspace's secrets: team `team_id`'s (whoever of it made them), else `owner_id`'s own."""
    if team_id is not None:
        return WebhookSecret.objects.filter(team_id=team_id)
    return WebhookSecret.objects.filter(owner_id=owner_id, team=None)


def _current_row(owner_id: int, team_id=None) -> WebhookSecret:
    """The workspace's current secret's row, made now if there is none."""
    row = _held(owner_id, team_id).filter(expires_at__isnull=True).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            secret = _encrypted(new_secret())
            return WebhookSecret.objects.create(owner_id=owner_id, team_id=team_id, **secret)
    except IntegrityError:  # made at the same moment by another request or worker: theirs counts
        return _held(owner_id, team_id).get(expires_at__isnull=True)


def _in_grace(owner_id: int, team_id=None):
    return _held(owner_id, team_id).filter(expires_at__gt=timezone.now())


def current_webhook_secret(owner_id: int, team_id=None) -> str:
    """The workspace's current secret in clear, made on first need. Raises WebhookSecretUnreadable."""
    return _decrypted(_current_row(owner_id, team_id))


def webhook_secret_rows(owner_id: int, team_id=None) -> list[WebhookSecret]:
    """The owner's secrets that sign now (the current one, then rotated-out ones still in their grace
    period, newest first), not decrypted: for showing which ones exist."""
    signing = Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    return list(
        _held(owner_id, team_id)
        .filter(signing)
        .order_by(F("expires_at").desc(nulls_first=True), "-created_at")
    )


def signing_secrets(owner_id: int, team_id=None) -> list[str]:
    """Every secret a webhook of this workspace (a team's task: the team's; else its owner's) is
    signed with now: the current one (made on first need), then each rotated-out one still in its
    grace period. Raises WebhookSecretUnreadable when the current one cannot be decrypted; an old
    one that cannot is left out."""
    found = [_decrypted(_current_row(owner_id, team_id))]
    for row in _in_grace(owner_id, team_id).order_by("-created_at", "-pk"):
        try:
            found.append(_decrypted(row))
        except WebhookSecretUnreadable:
            continue
    return found


def grace_period() -> timedelta:
    """How long a rotated-out secret keeps signing beside the new one."""
    return timedelta(seconds=max(settings.PLAYGROUND_WEBHOOK_SECRET_GRACE, 0))


@transaction.atomic  # with its audit entry: no entry, no rotation
def rotate_webhook_secret(
    owner_id: int,
    *,
    keep_previous: bool = True,
    by: audit.By = audit.By(),  # noqa: B008
    team_id=None,
) -> str:
    """Make a new current secret and return it; the old one signs too until the grace period ends.
    Without `keep_previous` (a secret leaked) every earlier secret stops signing at once."""
    try:
        secret = _rotate(owner_id, keep_previous, team_id)
    except IntegrityError:  # a rotation at the same moment made a current secret: rotate that one
        secret = _rotate(owner_id, keep_previous, team_id)
    detail = (
        "earlier secrets sign until their grace ends" if keep_previous else "earlier secrets stopped at once"
    )
    audit.record(owner_id, "webhook_secret.rotated", f"whsec_…{secret[-4:]}", detail, by=by, team_id=team_id)
    return secret


def _rotate(owner_id: int, keep_previous: bool, team_id=None) -> str:
    grace = grace_period()
    secret = new_secret()
    with transaction.atomic():
        now = timezone.now()
        mine = _held(owner_id, team_id)
        if keep_previous:
            mine.filter(expires_at__lte=now).delete()
            mine.filter(expires_at__isnull=True).update(expires_at=now + grace)
        else:
            mine.delete()
        WebhookSecret.objects.create(owner_id=owner_id, team_id=team_id, created_at=now, **_encrypted(secret))
        retired = mine.filter(expires_at__isnull=False).order_by("-created_at", "-pk")
        mine.filter(pk__in=list(retired.values_list("pk", flat=True)[MAX_RETIRED:])).delete()
    return secret


def reencrypt_webhook_secrets() -> tuple[int, list[int]]:
    """Re-encrypt every stored webhook secret under the first Fernet key: (rows done, ids unreadable)."""
    return reencrypt(WebhookSecret)
