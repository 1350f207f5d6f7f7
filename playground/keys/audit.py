"""The audit log: one entry per change to what an account has issued or stored (API keys, the
upstream key, demo passes, the webhook signing secret), written by the service that makes the
change, in its transaction. `record` is the only writer; the keys page shows the entries and
exports them as CSV (`csv_rows`, written out by `web.csv_export`, which defuses formulas)."""

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from .models import ApiKey, AuditEntry

CSV_HEADER = ["time (UTC)", "action", "subject", "detail", "by", "from"]


@dataclass(frozen=True)
class By:
    """Who made a change: the signed-in person and their address; `By()` for a command."""

    actor: AbstractBaseUser | None = None
    ip: str | None = None


def record(
    owner_id, action: str, subject: str = "", detail: str = "", *, by: By = By(), team_id=None
) -> AuditEntry:
    """One entry in `owner_id`'s log, or in team `team_id`'s when given (then `owner_id` is its
    owner, or the person whose team key it is)."""
    actor = by.actor if by.actor is not None and by.actor.is_authenticated else None
    return AuditEntry.objects.create(
        owner_id=owner_id,
        team_id=team_id,
        actor=actor,
        action=action,
        subject=subject[:200],
        detail=detail[:500],
        ip=by.ip,
    )


def key_subject(key: ApiKey) -> str:
    return f"key {key.prefix}… ({key.name or 'unnamed'})"


def csv_rows(entries: Iterable[AuditEntry]) -> Iterable[list[str]]:
    """The entries as rows of the CSV export (its header first), times in UTC."""
    yield CSV_HEADER
    for entry in entries:
        by = entry.actor.get_username() if entry.actor else "command line"
        yield [
            f"{entry.created_at:%Y-%m-%d %H:%M:%S}",
            entry.action,
            entry.subject,
            entry.detail,
            by,
            entry.ip or "",
        ]
