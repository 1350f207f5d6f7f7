"""Key governance under attack: rolls that race, limits typed to overflow, a rate limit that must
stay inside the server's, a periodic budget under concurrent submits, and an audit log that must
fail together with the change it records."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from playground.generations.models import Task
from playground.keys.models import ApiKey, AuditEntry, WebhookSecret
from playground.keys.periods import period_start
from playground.keys.services import forget_recent_keys, issue_key, roll_key
from playground.keys.webhook_secrets import current_webhook_secret

from .helpers import SEED, Api, submits_at_once


def status_with(client, capture, secret) -> int:
    forget_recent_keys()
    return Api(client, secret, capture).get("/api/v1/models").status_code


# --- Rolling ------------------------------------------------------------------------------------


def test_two_rolls_at_once_never_revive_the_secret_the_owner_rolled_to_stop(
    client, user, catalog, django_capture_on_commit_callbacks
):
    """Two rolls of one key from two tabs (each holding the key as it read it): one 'stops now'
    because the secret leaked, the other with a week's grace. Whatever order they land in, the
    leaked secret must stop, and the secret the last roll showed must work."""
    issued = issue_key(user, name="leaky")
    tab_one = ApiKey.objects.get(pk=issued.key.pk)
    tab_two = ApiKey.objects.get(pk=issued.key.pk)
    stop_now = roll_key(tab_one, timedelta(0))
    with_grace = roll_key(tab_two, timedelta(days=7))
    capture = django_capture_on_commit_callbacks
    assert status_with(client, capture, issued.secret) == 401  # the leaked one: stopped
    assert status_with(client, capture, with_grace.secret) == 200  # the one shown last
    assert status_with(client, capture, stop_now.secret) == 200  # in the later roll's grace


def test_a_key_deleted_while_its_roll_was_on_the_way_is_not_rolled(signed_in_client, user):
    issued = issue_key(user, name="gone")
    stale = ApiKey.objects.get(pk=issued.key.pk)
    ApiKey.objects.filter(pk=issued.key.pk).update(deleted_at=timezone.now())
    with pytest.raises(ApiKey.DoesNotExist):
        roll_key(stale, timedelta(hours=1))
    assert ApiKey.objects.get(pk=issued.key.pk).prefix == issued.key.prefix
    assert not AuditEntry.objects.filter(action="key.rolled").exists()


@pytest.fixture
def signed_in_client(client, user, catalog):
    client.force_login(user)
    return client


# --- Requests a minute: the form and the command -------------------------------------------------


@pytest.mark.parametrize("rpm", ["99999999999", "9" * 30])
def test_a_huge_rate_on_the_key_form_is_a_field_error_not_a_server_error(signed_in_client, settings, rpm):
    settings.PLAYGROUND_API_RATE_LIMIT = "0/60"  # the server's limit off: no ceiling to stop it
    answer = signed_in_client.post(reverse("key-create"), {"name": "huge", "requests_per_minute": rpm})
    assert answer.status_code == 200
    assert answer.context["new_key_form"].errors["requests_per_minute"]
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("rpm", ["99999999999", "²"])
def test_issue_key_refuses_a_rate_it_cannot_store_with_a_clear_error(user, catalog, settings, rpm):
    settings.PLAYGROUND_API_RATE_LIMIT = "0/60"
    with pytest.raises(CommandError, match="--rpm must be a whole number"):
        call_command("issue_key", user.username, "--rpm", rpm, stdout=io.StringIO())
    assert not ApiKey.objects.exists()


# --- Requests a minute: never looser than the server's limit -------------------------------------


def test_a_keys_own_rate_never_lets_it_past_the_servers_limit_of_a_shorter_window(
    client, user, catalog, settings, django_capture_on_commit_callbacks
):
    """The server allows one key 2 requests a second (so 120 a minute, the most a key may be
    given). A key given 120 a minute must still get no more than 2 in a second."""
    settings.PLAYGROUND_API_RATE_LIMIT = "2/1"
    api = Api(client, issue_key(user, requests_per_minute=120).secret, django_capture_on_commit_callbacks)
    statuses = [api.get("/api/v1/models").status_code for _ in range(6)]
    # Six requests in well under a second touch at most two of the server's windows.
    assert statuses.count(200) <= 2 + 2 and statuses.count(429) >= 2, statuses


# --- The audit log fails with the change ---------------------------------------------------------


@pytest.fixture
def audit_writes_fail(db):
    """The audit table refuses every new row (a database that cannot take it)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "CREATE TRIGGER audit_down BEFORE INSERT ON keys_auditentry "
                "BEGIN SELECT RAISE(ABORT, 'audit down'); END"
            )
        else:
            cursor.execute(
                "CREATE FUNCTION audit_down() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit down'; "
                "END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER audit_down BEFORE INSERT ON keys_auditentry "
                "FOR EACH ROW EXECUTE FUNCTION audit_down()"
            )


def test_a_webhook_secret_rotation_whose_audit_entry_fails_does_not_happen(
    signed_in_client, user, audit_writes_fail
):
    """The audit entry is written in the change's transaction: no entry, no change. A rotation
    that ended every earlier secret, then failed, must leave the old secret signing."""
    before = current_webhook_secret(user.pk)
    with pytest.raises(DatabaseError):
        signed_in_client.post(reverse("webhook-secret-rotate"), {"end_previous": "on"})
    assert current_webhook_secret(user.pk) == before
    assert WebhookSecret.objects.filter(owner=user).count() == 1


def test_a_key_change_whose_audit_entry_fails_does_not_happen(signed_in_client, user, audit_writes_fail):
    with pytest.raises(Exception):  # noqa: B017 (the database's refusal, whatever it is called)
        signed_in_client.post(reverse("key-create"), {"name": "unrecorded"})
    assert not ApiKey.objects.exists()


# --- Periodic budgets under concurrency -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_sixteen_concurrent_submits_never_overspend_a_periodic_budget(catalog, user, queue_only, period):
    """Room for exactly three 1K images this period; last period's tasks (which no longer count)
    are there too. Sixteen submits at once: three get in."""
    issued = issue_key(user, budget=Decimal("0.3618"), budget_period=period)
    old = Task.objects.create(
        owner=user,
        api_key=issued.key,
        model=catalog[SEED],
        input={},
        engine="local",
        cost_estimate=Decimal("5"),
        request_hash="x",
        request_id="old",
    )
    Task.objects.filter(pk=old.pk).update(created_at=period_start(period) - timedelta(seconds=1))
    assert submits_at_once([issued.secret], 16) == [201] * 3 + [402] * 13
    assert Task.objects.count() == 4


# --- Reaching the log and the roll from outside ----------------------------------------------------


def test_the_audit_csv_needs_a_sign_in_and_a_roll_needs_the_csrf_token(client, user, catalog):
    issued = issue_key(user, name="mine")
    assert client.get(reverse("audit-csv")).status_code == 302  # to sign in, no rows
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    forged = strict.post(reverse("key-action", args=[issued.key.pk, "roll"]), {"grace": "0"})
    assert forged.status_code == 403
    assert ApiKey.objects.get(pk=issued.key.pk).prefix == issued.key.prefix
