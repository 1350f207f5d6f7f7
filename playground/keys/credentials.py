"""Stored upstream (MindVideo) keys: encrypted at rest, read only by the task runner.

Secrets are encrypted with MultiFernet. `PLAYGROUND_FERNET_KEYS` is a comma list of Fernet keys: the
first encrypts, all of them decrypt, so a rotation is: prepend a new key, run
`manage.py rotate_upstream_keys` (every row re-encrypted under the first key; the webhook signing
secrets of `keys.webhook_secrets`, encrypted with the same keys, too), drop the old key.
Keys derived from SECRET_KEY and SECRET_KEY_FALLBACKS (HKDF-SHA256) always decrypt too, and encrypt
when `PLAYGROUND_FERNET_KEYS` is empty: rotating SECRET_KEY the Django way (the old one moved to
SECRET_KEY_FALLBACKS), then running `rotate_upstream_keys`, keeps every stored key readable.

A secret is never logged or rendered: only its last four characters are ever shown.
"""

import base64
import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from playground.engines.mindvideo import check_key

from . import audit
from .models import UpstreamCredential

logger = logging.getLogger(__name__)

HKDF_SALT = b"playground.keys.upstream-credentials"
HKDF_INFO = b"fernet-v1"
UNREADABLE = (
    "The stored key cannot be decrypted with the configured encryption keys "
    "(PLAYGROUND_FERNET_KEYS, SECRET_KEY, SECRET_KEY_FALLBACKS)."
)


def derived_fernet_key(secret_key: str) -> bytes:
    """The Fernet key HKDF-SHA256 derives from a Django SECRET_KEY."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=HKDF_SALT, info=HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret_key.encode()))


def fernet() -> MultiFernet:
    """The configured keys (the first encrypts), then the SECRET_KEY-derived ones."""
    keys = []
    for position, key in enumerate(k.strip() for k in settings.PLAYGROUND_FERNET_KEYS if k.strip()):
        try:
            keys.append(Fernet(key))
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"PLAYGROUND_FERNET_KEYS: key {position + 1} is not a Fernet key (32 bytes, url-safe "
                'base64). Make one with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"'
            ) from None
    for secret_key in [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]:
        keys.append(Fernet(derived_fernet_key(secret_key)))
    return MultiFernet(keys)


def _held(user_id, team_id=None):
    """The credential of a workspace: the team's (whoever of its admins stored it) or the
    person's own."""
    if team_id is not None:
        return UpstreamCredential.objects.filter(team_id=team_id)
    return UpstreamCredential.objects.filter(user_id=user_id, team=None)


@transaction.atomic
def store_upstream_key(
    user: AbstractBaseUser,
    secret: str,
    label: str = "",
    by: audit.By = audit.By(),  # noqa: B008
    team_id=None,
) -> UpstreamCredential:
    """Encrypt and store the platform key of `user`'s personal workspace, or of team `team_id`
    (`user` the admin storing it), replacing any earlier one (and its failure state)."""
    secret = secret.strip()
    if not secret:
        raise ValueError("The upstream key is empty.")
    audit.record(user.pk, "upstream_key.set", f"upstream key …{secret[-4:]}", label, by=by, team_id=team_id)
    values = {
        "user": user,
        "label": label,
        "secret_encrypted": fernet().encrypt(secret.encode()).decode(),
        "last4": secret[-4:],
        "created_at": timezone.now(),
        "last_used_at": None,
        "last_error": "",
        "failing_since": None,
    }
    credential = _held(user.pk, team_id).select_for_update().first()
    if credential is None:
        return UpstreamCredential.objects.create(team_id=team_id, **values)
    for name, value in values.items():
        setattr(credential, name, value)
    credential.save()
    return credential


@transaction.atomic
def delete_upstream_key(user: AbstractBaseUser, by: audit.By = audit.By(), team_id=None) -> None:  # noqa: B008
    for credential in _held(user.pk, team_id):
        audit.record(user.pk, "upstream_key.deleted", str(credential), by=by, team_id=team_id)
        credential.delete()


def stored_upstream_key(user_id, team_id=None) -> UpstreamCredential | None:
    """The workspace's stored credential (never decrypted here): what its page shows."""
    return _held(user_id, team_id).first()


def has_working_upstream_key(user_id, team_id=None) -> bool:
    """Whether tasks in this workspace can run upstream: the operator's key, or the workspace's
    own that has not been rejected. (No decryption: this runs on every playground page.)"""
    if settings.MINDVIDEO_API_KEY:
        return True
    return _held(user_id, team_id).filter(failing_since__isnull=True).exists()


def upstream_key_for(user_id, team_id=None) -> str | None:
    """The workspace's platform key: a team task's is the team's, a personal task's its owner's;
    else the operator's MINDVIDEO_API_KEY, else None. A member's own key never runs a team task
    (nor the team's a personal one): each is charged to the account it was meant for.

    A stored key that cannot be decrypted (its encryption key was dropped) gives None, never the
    operator's key: the workspace meant its own account to be charged.
    """
    credential = _held(user_id, team_id).first()
    if credential is None:
        return settings.MINDVIDEO_API_KEY or None
    try:
        return fernet().decrypt(credential.secret_encrypted.encode()).decode()
    except InvalidToken:
        logger.error(
            "upstream credential %s (user %s, team %s): %s", credential.pk, user_id, team_id, UNREADABLE
        )
        mark_upstream_failure(user_id, UNREADABLE, team_id)
        return None


def mark_upstream_failure(user_id, message: str, team_id=None) -> None:
    """Record that the workspace's key failed (e.g. rejected by the platform); keeps the first
    failure time."""
    updated = _held(user_id, team_id).update(
        last_error=message[:1000], failing_since=Coalesce("failing_since", timezone.now())
    )
    if not updated:
        logger.warning("the operator's MINDVIDEO_API_KEY failed for user %s: %s", user_id, message)


def mark_upstream_used(user_id, team_id=None) -> None:
    """Record a successful use of the workspace's key, clearing any failure."""
    _held(user_id, team_id).update(last_used_at=timezone.now(), last_error="", failing_since=None)


def reencrypt(model) -> tuple[int, list[int]]:
    """Re-encrypt every row's `secret_encrypted` of `model` (upstream keys, webhook secrets) under
    the first Fernet key: (rows done, ids no configured key decrypts)."""
    keys = fernet()
    done, unreadable = 0, []
    for row in model.objects.only("pk", "secret_encrypted").iterator():
        try:
            token = keys.rotate(row.secret_encrypted.encode()).decode()
        except InvalidToken:
            unreadable.append(row.pk)
            continue
        model.objects.filter(pk=row.pk).update(secret_encrypted=token)
        done += 1
    return done, unreadable


def rotate_upstream_keys() -> tuple[int, list[int]]:
    """Re-encrypt every stored key under the first Fernet key: (rows rotated, ids not decryptable)."""
    return reencrypt(UpstreamCredential)


def check_upstream_key(secret: str) -> tuple[bool, str]:
    """Whether the MindVideo platform takes `secret` (one light request to it), and what to tell
    the person: the web's door to the engine, which pages never import themselves."""
    return check_key(secret)


def store_if_accepted(
    user: AbstractBaseUser,
    secret: str,
    label: str = "",
    by: audit.By = audit.By(),  # noqa: B008
    team_id=None,
) -> tuple[bool, str]:
    """Ask the platform whether it takes `secret` and store it (`store_upstream_key`) only if it
    does, so a typo never takes working tasks down: (accepted, what to tell the person)."""
    accepted, message = check_upstream_key(secret)
    if accepted:
        store_upstream_key(user, secret, label, by=by, team_id=team_id)
    return accepted, message


def test_stored_upstream_key(user_id, team_id=None) -> tuple[bool, str] | None:
    """Test the workspace's stored key against the platform and record the outcome on it (a key
    that fails is marked failing from its first failure; one that works is cleared): (accepted,
    what to tell the person), or None when there is no stored key."""
    credential = stored_upstream_key(user_id, team_id)
    if credential is None:
        return None
    secret = upstream_key_for(user_id, team_id)
    accepted, message = check_upstream_key(secret) if secret else (False, "The stored key could not be read.")
    UpstreamCredential.objects.filter(pk=credential.pk).update(
        last_error="" if accepted else message,
        failing_since=None if accepted else (credential.failing_since or timezone.now()),
    )
    return accepted, message
