"""Webhook signing secrets: one per owner, Standard Webhooks format, encrypted at rest, rotated with
a grace period, re-encrypted with the stored upstream keys, printed by `manage.py webhook_secret`."""

import base64
import io
import re
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from standardwebhooks import Webhook

from playground.keys.models import WebhookSecret
from playground.keys.webhook_secrets import (
    MAX_RETIRED,
    WebhookSecretUnreadable,
    current_webhook_secret,
    rotate_webhook_secret,
    signing_secrets,
    webhook_secret_rows,
)

WHSEC = re.compile(r"whsec_[A-Za-z0-9+/]{32}")  # 24 random bytes, base64
KEY_A, KEY_B = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def a_day_later(owner):
    """Move the clock past every grace period: end them now."""
    WebhookSecret.objects.filter(owner=owner, expires_at__isnull=False).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_secret_is_made_on_first_need_in_the_standard_webhooks_format_and_kept(user):
    assert not WebhookSecret.objects.exists()

    secret = current_webhook_secret(user.pk)

    assert WHSEC.fullmatch(secret)
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    Webhook(secret)  # the reference library takes it as it is
    assert current_webhook_secret(user.pk) == secret
    assert signing_secrets(user.pk) == [secret]
    [row] = WebhookSecret.objects.values()
    assert row["last4"] == secret[-4:] and row["expires_at"] is None
    assert all(secret.removeprefix("whsec_") not in str(value) for value in row.values())  # encrypted
    assert str(WebhookSecret.objects.get()) == f"webhook secret …{secret[-4:]}"


def test_each_owner_has_their_own_secret(user, other_user):
    assert current_webhook_secret(user.pk) != current_webhook_secret(other_user.pk)
    rotate_webhook_secret(user.pk)
    assert len(signing_secrets(other_user.pk)) == 1  # Alice's rotation is hers alone


def test_rotation_signs_with_new_and_old_for_the_grace_period_then_only_the_new(user, settings):
    settings.PLAYGROUND_WEBHOOK_SECRET_GRACE = 3600
    old = current_webhook_secret(user.pk)

    new = rotate_webhook_secret(user.pk)

    assert WHSEC.fullmatch(new) and new != old
    assert current_webhook_secret(user.pk) == new
    assert signing_secrets(user.pk) == [new, old]
    current, retired = webhook_secret_rows(user.pk)
    assert current.expires_at is None and current.last4 == new[-4:]
    assert retired.last4 == old[-4:]
    assert abs(retired.expires_at - (timezone.now() + timedelta(hours=1))) < timedelta(seconds=10)

    a_day_later(user)

    assert signing_secrets(user.pk) == [new]
    assert [row.last4 for row in webhook_secret_rows(user.pk)] == [new[-4:]]


def test_rotating_again_keeps_earlier_old_secrets_up_to_a_limit(user):
    made = [current_webhook_secret(user.pk)]
    for _ in range(MAX_RETIRED + 2):
        made.append(rotate_webhook_secret(user.pk))

    newest_first = list(reversed(made))
    assert signing_secrets(user.pk) == newest_first[: MAX_RETIRED + 1]
    assert WebhookSecret.objects.filter(owner=user).count() == MAX_RETIRED + 1  # the rest are deleted


def test_rotation_deletes_secrets_whose_grace_is_over(user):
    current_webhook_secret(user.pk)
    rotate_webhook_secret(user.pk)
    a_day_later(user)

    newest = rotate_webhook_secret(user.pk)

    assert WebhookSecret.objects.filter(owner=user).count() == 2  # the newest and the one it replaced
    assert signing_secrets(user.pk)[0] == newest


def test_an_unreadable_current_secret_is_an_error_and_an_unreadable_old_one_left_out(user, settings, caplog):
    settings.PLAYGROUND_FERNET_KEYS = [KEY_A]
    old = current_webhook_secret(user.pk)
    settings.PLAYGROUND_FERNET_KEYS = [KEY_B]  # KEY_A dropped without re-encrypting

    with pytest.raises(WebhookSecretUnreadable, match="rotate it on the Keys page"):
        signing_secrets(user.pk)
    new = rotate_webhook_secret(user.pk)

    assert signing_secrets(user.pk) == [new]
    assert "cannot be decrypted" in caplog.text and old not in caplog.text


def test_rotating_the_fernet_keys_reencrypts_webhook_secrets_too(user, settings):
    settings.PLAYGROUND_FERNET_KEYS = [KEY_A]
    secret = current_webhook_secret(user.pk)
    before = WebhookSecret.objects.get().secret_encrypted

    settings.PLAYGROUND_FERNET_KEYS = [KEY_B, KEY_A]
    out = io.StringIO()
    call_command("rotate_upstream_keys", stdout=out)

    assert out.getvalue() == "Re-encrypted 0 upstream key(s).\nRe-encrypted 1 webhook secret(s).\n"
    after = WebhookSecret.objects.get().secret_encrypted
    assert after != before and Fernet(KEY_B).decrypt(after.encode()).decode() == secret
    settings.PLAYGROUND_FERNET_KEYS = [KEY_B]  # the old key dropped
    assert current_webhook_secret(user.pk) == secret


def test_the_fernet_rotation_names_webhook_secrets_it_cannot_read(user, settings):
    settings.PLAYGROUND_FERNET_KEYS = [KEY_A]
    current_webhook_secret(user.pk)
    settings.PLAYGROUND_FERNET_KEYS = [KEY_B]

    ids = rf"1 webhook secret\(s\) \(ids {WebhookSecret.objects.get().pk}\)"
    with pytest.raises(CommandError, match=ids):
        call_command("rotate_upstream_keys", stdout=io.StringIO())


# --- manage.py webhook_secret ---------------------------------------------------------------------


def run(*args) -> str:
    out = io.StringIO()
    call_command("webhook_secret", *args, stdout=out)
    return out.getvalue().strip()


def test_the_command_prints_the_users_secret_and_rotates_it(user, other_user):
    printed = run("alice")
    assert printed == current_webhook_secret(user.pk) and WHSEC.fullmatch(printed)
    assert run("bob") == current_webhook_secret(other_user.pk) != printed

    rotated = run("alice", "--rotate")

    assert rotated != printed and signing_secrets(user.pk) == [rotated, printed]
    assert run("alice") == rotated


def test_the_command_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match="No user named 'nobody'"):
        run("nobody")
