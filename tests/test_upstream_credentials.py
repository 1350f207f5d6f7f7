"""Stored upstream keys: encrypted at rest, rotated without loss, shown only by their last 4, never
logged."""

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection

from playground.generations.models import Task, TaskEvent
from playground.keys.credentials import (
    mark_upstream_failure,
    mark_upstream_used,
    store_upstream_key,
    upstream_key_for,
)
from playground.keys.models import UpstreamCredential

from .upstream import FakeUpstream, Reply

SECRET = "mv_live_Zq8VnR2xLp4TtY7wKd3Hs9Bc6Mf1Ja5E"
KEY_A, KEY_B = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def test_it_stores_the_key_encrypted_and_reads_it_back(user):
    credential = store_upstream_key(user, f"  {SECRET}\n", label="work")

    row = UpstreamCredential.objects.get(pk=credential.pk)
    assert SECRET not in row.secret_encrypted
    assert row.secret_encrypted.startswith("gAAAAA")  # a Fernet token
    assert (row.last4, row.label) == ("Ja5E", "work")
    assert upstream_key_for(user.pk) == SECRET
    for shown in (str(row), repr(row)):
        assert "Ja5E" in shown and SECRET[:-4] not in shown


# Reads the files in a child process: closing a descriptor of an open SQLite file in this process
# would drop SQLite's POSIX locks on it (https://sqlite.org/howtocorrupt.html#_posix_advisory_locks).
SEARCH_FILES = """
import json, sys
content = b"".join(open(name, "rb").read() for name in sys.argv[2:])
print(json.dumps({needle: needle.encode() in content for needle in json.loads(sys.argv[1])}))
"""


@pytest.mark.sqlite
@pytest.mark.django_db(transaction=True)
def test_the_database_file_never_holds_the_secret(user):
    credential = store_upstream_key(user, SECRET)

    name = Path(connection.settings_dict["NAME"])
    files = [str(p) for p in (name, Path(f"{name}-wal")) if p.exists()]
    needles = [credential.secret_encrypted, SECRET, SECRET[:-4]]
    found = subprocess.run(
        [sys.executable, "-c", SEARCH_FILES, json.dumps(needles), *files],
        capture_output=True,
        text=True,
        check=True,
    )
    # The ciphertext is found (the right files, the row written), the secret nowhere.
    assert json.loads(found.stdout) == {credential.secret_encrypted: True, SECRET: False, SECRET[:-4]: False}


def test_the_users_own_key_comes_first_then_the_operators(settings, user, other_user):
    settings.MINDVIDEO_API_KEY = "mv_live_operator_fallback"
    store_upstream_key(user, SECRET)

    assert upstream_key_for(user.pk) == SECRET
    assert upstream_key_for(other_user.pk) == "mv_live_operator_fallback"
    settings.MINDVIDEO_API_KEY = ""
    assert upstream_key_for(other_user.pk) is None


def test_storing_again_replaces_the_key_and_its_failure(user):
    store_upstream_key(user, "mv_live_old_key_0000")
    mark_upstream_failure(user.pk, "rejected by upstream")
    store_upstream_key(user, SECRET)

    credential = UpstreamCredential.objects.get(user=user)
    assert (credential.last4, credential.last_error, credential.failing_since) == ("Ja5E", "", None)
    assert upstream_key_for(user.pk) == SECRET


def test_an_empty_key_is_refused(user):
    with pytest.raises(ValueError, match="empty"):
        store_upstream_key(user, "  \n")


def test_a_failure_keeps_its_first_time_and_a_use_clears_it(user):
    store_upstream_key(user, SECRET)
    mark_upstream_failure(user.pk, "rejected by upstream")
    first = UpstreamCredential.objects.get(user=user).failing_since
    mark_upstream_failure(user.pk, "rejected by upstream again")

    credential = UpstreamCredential.objects.get(user=user)
    assert (credential.failing_since, credential.last_error) == (first, "rejected by upstream again")
    mark_upstream_used(user.pk)
    credential.refresh_from_db()
    assert (credential.failing_since, credential.last_error) == (None, "")
    assert credential.last_used_at is not None


def test_a_failure_of_the_operators_key_is_logged(user, caplog):
    mark_upstream_failure(user.pk, "rejected by upstream")

    assert "the operator's MINDVIDEO_API_KEY failed" in caplog.text


# --- Rotation ---------------------------------------------------------------------------------------


def test_rotation_reencrypts_so_the_old_key_can_be_dropped(settings, user):
    settings.PLAYGROUND_FERNET_KEYS = [KEY_A]
    store_upstream_key(user, SECRET)
    before = UpstreamCredential.objects.get(user=user).secret_encrypted

    settings.PLAYGROUND_FERNET_KEYS = [KEY_B, KEY_A]  # a new key first; the old one still decrypts
    out = io.StringIO()
    call_command("rotate_upstream_keys", stdout=out)
    assert out.getvalue() == "Re-encrypted 1 upstream key(s).\nRe-encrypted 0 webhook secret(s).\n"
    after = UpstreamCredential.objects.get(user=user).secret_encrypted
    assert after != before
    assert Fernet(KEY_B).decrypt(after.encode()).decode() == SECRET

    settings.PLAYGROUND_FERNET_KEYS = [KEY_B]  # the old key dropped
    assert upstream_key_for(user.pk) == SECRET


def test_dropping_a_key_before_rotating_leaves_the_key_unreadable_and_says_so(settings, user, caplog):
    settings.PLAYGROUND_FERNET_KEYS = [KEY_A]
    credential = store_upstream_key(user, SECRET)
    settings.PLAYGROUND_FERNET_KEYS = [KEY_B]

    assert upstream_key_for(user.pk) is None  # never the operator's key instead of the user's
    credential.refresh_from_db()
    assert "cannot be decrypted" in credential.last_error and credential.failing_since
    assert "cannot be decrypted" in caplog.text and SECRET not in caplog.text
    with pytest.raises(CommandError, match=f"credential ids {credential.pk}"):
        call_command("rotate_upstream_keys", stdout=io.StringIO())


def test_secret_key_rotation_keeps_stored_keys_readable(settings, user):
    settings.PLAYGROUND_FERNET_KEYS = []
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "old-secret-key-" + "x" * 40, []
    store_upstream_key(user, SECRET)

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "new-secret-key-" + "y" * 40, [settings.SECRET_KEY]
    assert upstream_key_for(user.pk) == SECRET  # the fallback's derived key still decrypts
    call_command("rotate_upstream_keys", stdout=io.StringIO())
    settings.SECRET_KEY_FALLBACKS = []
    assert upstream_key_for(user.pk) == SECRET


def test_a_malformed_fernet_key_is_a_clear_configuration_error(settings, user):
    settings.PLAYGROUND_FERNET_KEYS = [KEY_A, "not-a-fernet-key"]

    with pytest.raises(ImproperlyConfigured, match="key 2 is not a Fernet key") as failure:
        store_upstream_key(user, SECRET)
    assert "not-a-fernet-key" not in str(failure.value)


# --- The management command -------------------------------------------------------------------------


def test_set_upstream_key_reads_stdin_and_prints_only_the_last_4(user):
    out = io.StringIO()
    call_command(
        "set_upstream_key", "alice", "--label", "studio", stdin=io.StringIO(SECRET + "\n"), stdout=out
    )

    assert out.getvalue() == "Stored key ending in Ja5E\n"
    assert upstream_key_for(user.pk) == SECRET
    assert UpstreamCredential.objects.get(user=user).label == "studio"


def test_set_upstream_key_takes_no_key_on_the_command_line(user):
    with pytest.raises(TypeError):
        call_command("set_upstream_key", "alice", key=SECRET, stdin=io.StringIO(""))


@pytest.mark.parametrize(
    ("username", "stdin", "error"),
    [("nobody", SECRET, "No user named 'nobody'"), ("alice", "\n", "No key given")],
)
def test_set_upstream_key_refuses_a_missing_user_or_key(user, username, stdin, error):
    with pytest.raises(CommandError, match=error):
        call_command("set_upstream_key", username, stdin=io.StringIO(stdin), stdout=io.StringIO())
    assert not UpstreamCredential.objects.exists()


# --- Never shown, never logged ------------------------------------------------------------------------


def test_the_admin_shows_only_the_last_4(client, user):
    credential = store_upstream_key(user, SECRET)
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "root-password-1")
    client.force_login(admin)

    for url in ("/admin/keys/upstreamcredential/", f"/admin/keys/upstreamcredential/{credential.pk}/change/"):
        page = client.get(url).content.decode()
        assert "Ja5E" in page
        assert SECRET[:-4] not in page and credential.secret_encrypted not in page


@pytest.mark.parametrize("failure", ["rejected", "unavailable"])
def test_the_secret_never_reaches_logs_events_or_errors(api, settings, user, caplog, failure):
    fake = FakeUpstream(key=SECRET if failure == "unavailable" else "mv_live_another_key")
    try:
        settings.PLAYGROUND_ENGINE = "mindvideo"
        settings.MINDVIDEO_BASE_URL = fake.base_url
        settings.MINDVIDEO_POLL_INTERVAL = 0.01
        settings.MINDVIDEO_MAX_RETRIES = 1
        fake.always["poll"] = Reply(500, {"error": {"code": "internal", "message": "boom"}})
        store_upstream_key(user, SECRET)
        caplog.set_level(logging.DEBUG)

        task_id = api.submit().json()["task_id"]

        task = Task.objects.get(pk=task_id)
        assert task.status == "failed"
        assert (
            task.error["code"]
            == {"rejected": "upstream_key_rejected", "unavailable": "upstream_unavailable"}[failure]
        )
        assert fake.requests[0].headers["authorization"] == f"Bearer {SECRET}"  # it was really used
        assert caplog.records, "nothing was logged: the check would prove nothing"
        assert SECRET not in caplog.text and SECRET[:-4] not in caplog.text
        assert not any(SECRET[:-4] in e.message for e in TaskEvent.objects.filter(task=task))
        assert SECRET[:-4] not in str(task.error)
        assert SECRET[:-4] not in api.get(f"/api/v1/tasks/{task_id}/events").content.decode()
    finally:
        fake.close()
