"""Issuing and checking the API keys we hand out.

Format: `pg_live_` + 32 base62 characters (~190 random bits) + a 6-character CRC-32 checksum, so a
mistyped key is refused before any database lookup and secret scanners can match the pattern
`pg_live_[0-9A-Za-z]{38}`. Stored as SHA-256 (no password hasher: the secret is random, and a
slow hash would cost ~100 ms per API call); looked up by its first 16 characters and compared in
constant time.

A key read from the database is kept by the process for at most PLAYGROUND_KEY_CACHE_SECONDS (1 s),
so a client polling many times a second costs one key lookup per second, not one per request. That is
the bound on how long a change made elsewhere takes to reach a process: a key disabled, deleted or
expired, or its account disabled, stops working everywhere within a second, and at once in the
process that made the change (any save of a key or an account empties its cache). Expiry is
checked on every request against the clock. Spend limits never come from here: a submit reads
the key's budget from its row, locked where there is one (`generations.services.lock_spend_limits`).
"""

import hashlib
import hmac
import re
import secrets
import string
import threading
import time as clock
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from playground.teams.services import is_member

from . import audit
from .models import ApiKey, BudgetPeriod

KEY_PREFIX = "pg_live_"
ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
RANDOM_LENGTH = 32
CHECKSUM_LENGTH = 6
LOOKUP_LENGTH = len(KEY_PREFIX) + 8
KEY_PATTERN = re.compile(rf"^{KEY_PREFIX}[0-9A-Za-z]{{{RANDOM_LENGTH + CHECKSUM_LENGTH}}}$")
LAST_USED_RESOLUTION = timedelta(minutes=1)
KEY_CACHE_SIZE = 1024

_recent_keys: dict[str, tuple[float, ApiKey]] = {}  # SHA-256 of a secret -> (read at, key with user)
_recent_keys_lock = threading.Lock()


class KeyRejected(Exception):
    """The presented key cannot be used; `code` says why (missing_key, invalid_key, key_disabled,
    key_deleted, key_expired)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str


def _base62(number: int, length: int) -> str:
    digits = []
    for _ in range(length):
        number, remainder = divmod(number, 62)
        digits.append(ALPHABET[remainder])
    return "".join(reversed(digits))


def _checksum(random_part: str) -> str:
    return _base62(zlib.crc32(random_part.encode()), CHECKSUM_LENGTH)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_key(secret: str) -> bool:
    """Format and checksum only: no database involved."""
    if not KEY_PATTERN.match(secret):
        return False
    body = secret[len(KEY_PREFIX) :]
    return hmac.compare_digest(_checksum(body[:RANDOM_LENGTH]), body[RANDOM_LENGTH:])


def expiry_through(day: date) -> datetime:
    """A key chosen to expire on `day` works through the whole of that day (local time)."""
    return timezone.make_aware(datetime.combine(day, time.max))


def issue_key(
    user: AbstractBaseUser,
    name: str = "",
    expires_at=None,
    budget=None,
    *,
    budget_period: str = "",
    team=None,
    allowed_models: Sequence[str] = (),
    requests_per_minute: int | None = None,
    by: audit.By = audit.By(),  # noqa: B008
) -> IssuedKey:
    """Create a key for `user`; the returned secret is the only time it exists in clear. Recorded in
    the account's audit log, `by` whom (a person at the keys page, or a command)."""
    with transaction.atomic():  # the key and its audit entry, or neither
        for _ in range(5):
            secret = _new_secret()
            try:
                with transaction.atomic():
                    key = ApiKey.objects.create(
                        user=user,
                        team=team,
                        name=name,
                        prefix=secret[:LOOKUP_LENGTH],
                        secret_hash=hash_secret(secret),
                        expires_at=expires_at,
                        budget=budget,
                        budget_period=budget_period if budget is not None else "",
                        allowed_models=list(allowed_models),
                        requests_per_minute=requests_per_minute,
                    )
            except IntegrityError:  # prefix collision: astronomically rare, try another
                continue
            audit.record(
                user.pk, "key.created", audit.key_subject(key), describe(key), by=by, team_id=key.team_id
            )
            return IssuedKey(key=key, secret=secret)
    raise RuntimeError("could not issue a unique key")


def roll_key(key: ApiKey, grace: timedelta, by: audit.By = audit.By()) -> IssuedKey:  # noqa: B008
    """Give `key` a new secret (shown this once). The old secret keeps working for `grace` (0: it
    stops at once), so clients can move over without an outage; the key stays the same key: its
    name, limits, budget and tasks. A secret rolled out earlier and still in its grace period
    stops now: only the secret just replaced is kept. ApiKey.DoesNotExist: the key was deleted."""
    keep = grace > timedelta(0)
    for _ in range(5):
        secret = _new_secret()
        try:
            with transaction.atomic():
                # The secret replaced is the row's, read under its lock, never the caller's copy: of
                # two rolls at once (two tabs), the later one keeps the earlier one's new secret, so a
                # secret one of them ended ("stops now": it leaked) never works again.
                locked = ApiKey.objects.select_for_update().get(pk=key.pk, deleted_at__isnull=True)
                old_prefix, old_hash = locked.prefix, locked.secret_hash
                key.previous_prefix = old_prefix if keep else None
                key.previous_secret_hash = old_hash if keep else ""
                key.previous_valid_until = timezone.now() + grace if keep else None
                key.prefix, key.secret_hash = secret[:LOOKUP_LENGTH], hash_secret(secret)
                key.save(update_fields=["prefix", "secret_hash", *ROLL_FIELDS])
                until = key.previous_valid_until
                detail = (
                    f"the old secret works until {timezone.localtime(until):%Y-%m-%d %H:%M %Z}"
                    if until
                    else "the old secret stopped"
                )
                subject = f"key {old_prefix}… -> {key.prefix}… ({key.name or 'unnamed'})"
                audit.record(key.user_id, "key.rolled", subject, detail, by=by, team_id=key.team_id)
        except IntegrityError:  # the new prefix is taken: astronomically rare, try another
            key.refresh_from_db(fields=["prefix", "secret_hash", *ROLL_FIELDS])
            continue
        return IssuedKey(key=key, secret=secret)
    raise RuntimeError("could not roll to a unique key")


ROLL_FIELDS = ("previous_prefix", "previous_secret_hash", "previous_valid_until")


def _new_secret() -> str:
    random_part = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return KEY_PREFIX + random_part + _checksum(random_part)


def describe(key: ApiKey) -> str:
    """A key's limits in words, for the audit log: "budget $50.00 per month, 60 requests a minute,
    models: a, b, expires 2027-01-31"."""
    parts = []
    if key.budget is not None:
        parts.append(
            f"budget ${key.budget:,.2f}"
            + (f" {BudgetPeriod(key.budget_period).label}" if key.budget_period else "")
        )
    if key.requests_per_minute:
        parts.append(f"{key.requests_per_minute} requests a minute")
    if key.allowed_models:
        parts.append("models: " + ", ".join(key.allowed_models))
    if key.expires_at:
        parts.append(f"expires {timezone.localtime(key.expires_at):%Y-%m-%d}")
    return ", ".join(parts) or "no limits"


def authenticate_key(secret: str | None, *, ip: str | None = None) -> ApiKey:
    """The active key for a presented secret, or KeyRejected saying why not."""
    if not secret:
        raise KeyRejected("missing_key", "Send your API key as `Authorization: Bearer <key>`.")
    if not looks_like_key(secret):
        raise KeyRejected("invalid_key", "The API key is not valid.")
    digest = hash_secret(secret)
    key = _recent_key(digest)
    if key is None:
        key = _key_with_prefix(secret[:LOOKUP_LENGTH])
        if key is None or not _secret_matches(key, digest):
            raise KeyRejected("invalid_key", "The API key is not valid.")
        # A team's key works while the person it was issued to is in the team (kept with the key).
        key.in_team = key.team_id is None or is_member(key.team_id, key.user_id)
        _remember_key(digest, key)
    elif not _secret_matches(key, digest):  # a rolled-out secret whose grace ended since
        raise KeyRejected("invalid_key", "The API key is not valid.")
    status = key.status
    if status != "active":
        raise KeyRejected(f"key_{status}", f"This API key is {status}.")
    if not key.user.is_active:
        raise KeyRejected("key_disabled", "This API key's account is disabled.")
    if not key.in_team:
        raise KeyRejected("key_disabled", "This API key's owner is no longer a member of its team.")
    _touch(key, ip)
    return key


def _key_with_prefix(prefix: str) -> ApiKey | None:
    """The key whose secret, or whose rolled-out secret, starts with `prefix`. get(), not first():
    each prefix is unique, and ordering costs every API call ~0.25 ms."""
    keys = ApiKey.objects.select_related("user")
    for column in ("prefix", "previous_prefix"):
        try:
            return keys.get(**{column: prefix})
        except ApiKey.DoesNotExist:
            continue
    return None


def _secret_matches(key: ApiKey, digest: str) -> bool:
    """The key's secret, or the one it was rolled from while that one's grace period lasts."""
    if hmac.compare_digest(key.secret_hash, digest):
        return True
    return bool(
        key.previous_secret_hash
        and key.previous_valid_until is not None
        and key.previous_valid_until > timezone.now()
        and hmac.compare_digest(key.previous_secret_hash, digest)
    )


def _recent_key(digest: str) -> ApiKey | None:
    entry = _recent_keys.get(digest)
    if entry is None or clock.monotonic() - entry[0] >= settings.PLAYGROUND_KEY_CACHE_SECONDS:
        return None
    return entry[1]


def _remember_key(digest: str, key: ApiKey) -> None:
    now = clock.monotonic()
    with _recent_keys_lock:
        if len(_recent_keys) >= KEY_CACHE_SIZE:
            for stale in [
                d
                for d, (read_at, _) in _recent_keys.items()
                if now - read_at >= settings.PLAYGROUND_KEY_CACHE_SECONDS
            ]:
                del _recent_keys[stale]
            if len(_recent_keys) >= KEY_CACHE_SIZE:
                _recent_keys.clear()
        _recent_keys[digest] = (now, key)


def key_or_account_changed(**kwargs) -> None:
    """Every save and delete of a key or an account (`KeysConfig.ready()`): this process forgets
    its keys now and again when the change commits, as another thread may read the old row until
    then."""
    forget_recent_keys()
    transaction.on_commit(forget_recent_keys)


def forget_recent_keys() -> None:
    """Empty this process's key cache."""
    with _recent_keys_lock:
        _recent_keys.clear()


def _touch(key: ApiKey, ip: str | None) -> None:
    """Record use at most once a minute per key, so polling clients cost no write per request."""
    now = timezone.now()
    if key.last_used_at and now - key.last_used_at < LAST_USED_RESOLUTION and key.last_used_ip == ip:
        return
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=now, last_used_ip=ip)
    key.last_used_at, key.last_used_ip = now, ip


@transaction.atomic
def set_key_disabled(key: ApiKey, disabled: bool, by: audit.By = audit.By()) -> None:  # noqa: B008
    key.disabled_at = timezone.now() if disabled else None
    key.save(update_fields=["disabled_at"])
    action = "key.disabled" if disabled else "key.enabled"
    audit.record(key.user_id, action, audit.key_subject(key), by=by, team_id=key.team_id)


@transaction.atomic
def delete_key(key: ApiKey, by: audit.By = audit.By()) -> None:  # noqa: B008
    """Soft delete: the key answers 401 `key_deleted` and its tasks keep their history."""
    key.deleted_at = timezone.now()
    key.save(update_fields=["deleted_at"])
    audit.record(key.user_id, "key.deleted", audit.key_subject(key), by=by, team_id=key.team_id)
