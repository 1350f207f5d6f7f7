"""What an owner can set on each API key beyond its budget: the models it may use, its own requests
a minute, a budget that starts again each day, week or month, rolling its secret with a grace
period; and the audit log of every change to keys, passes, the upstream key and the webhook
secret, on the keys page and as CSV."""

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from playground.access.passes import create_pass, revoke_pass
from playground.generations.models import Task
from playground.keys.credentials import delete_upstream_key, store_upstream_key
from playground.keys.models import ApiKey, AuditEntry
from playground.keys.periods import period_start
from playground.keys.services import forget_recent_keys, issue_key, roll_key
from playground.keys.webhook_secrets import rotate_webhook_secret

from .helpers import SEED, Api, wait_for
from .test_serve import free_port

OTHER = "gpt-image-2"


@pytest.fixture
def key_api(client, user, catalog, django_capture_on_commit_callbacks):
    def make(**limits) -> Api:
        issued = issue_key(user, name="governed", **limits)
        return Api(client, issued.secret, django_capture_on_commit_callbacks)

    return make


# --- Models a key may use ---------------------------------------------------------------------------


def test_a_key_limited_to_some_models_is_refused_others_with_403_naming_the_field(key_api, queue_only):
    api = key_api(allowed_models=[SEED])
    refused = api.post("/api/v1/tasks", {"model": OTHER, "input": {"prompt": "a cat"}})
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "model_not_allowed" and error["field"] == "model"
    assert not Task.objects.exists()
    assert api.submit().status_code == 201


def test_a_model_the_key_may_not_use_is_refused_before_its_input_is_read(key_api, queue_only):
    """The 403 comes first, naming the model: not that model's input errors (a 422 the client
    would fix only to be refused anyway)."""
    api = key_api(allowed_models=[SEED])
    refused = api.post("/api/v1/tasks", {"model": OTHER, "input": {"prompt": ""}})
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "model_not_allowed" and error["field"] == "model"
    assert OTHER in error["message"] and "GET /api/v1/models" in error["message"]
    assert api.post("/api/v1/tasks", {"model": SEED, "input": {"prompt": ""}}).status_code == 422


def test_a_key_limited_to_some_models_lists_only_those(key_api):
    api = key_api(allowed_models=[SEED])
    assert [model["slug"] for model in api.get("/api/v1/models").json()["data"]] == [SEED]
    assert api.get(f"/api/v1/models/{OTHER}").status_code == 404
    everything = key_api()
    assert len(everything.get("/api/v1/models").json()["data"]) > 1


# --- Requests a minute ------------------------------------------------------------------------------


def test_a_keys_own_rate_limit_refuses_with_429_and_retry_after(key_api):
    limited, other = key_api(requests_per_minute=3), key_api()
    for _ in range(3):
        assert limited.get("/api/v1/models").status_code == 200
    refused = limited.get("/api/v1/models")
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(refused["Retry-After"]) <= 61
    assert other.get("/api/v1/models").status_code == 200


def test_a_key_cannot_be_given_more_than_the_servers_limit(key_api, settings):
    settings.PLAYGROUND_API_RATE_LIMIT = "2/60"
    api = key_api(requests_per_minute=50)
    assert [api.get("/api/v1/models").status_code for _ in range(3)] == [200, 200, 429]


def away_from_a_minute_boundary() -> None:
    """Fixed windows start each minute: a burst that straddles one would be counted twice."""
    while time.time() % 60 > 55:
        time.sleep(0.5)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_keys_rate_limit_is_one_count_across_every_web_process(user, catalog, spawn):
    """Two gunicorn processes, one count: the shared cache (the database by default) decides, so
    a key with 5 a minute gets 5 answers in all, not 5 from each process."""
    secret = issue_key(user, name="rpm", requests_per_minute=5).secret
    port = free_port()
    spawn("serve", "--port", port, "--web-workers", 2, "--workers", 0)
    url = f"http://127.0.0.1:{port}/api/v1/models"
    headers = {"Authorization": f"Bearer {secret}", "Connection": "close"}
    assert wait_for(lambda: _answers(url), timeout=30)
    away_from_a_minute_boundary()
    statuses = [httpx.get(url, headers=headers).status_code for _ in range(12)]
    assert statuses.count(200) == 5 and statuses.count(429) == 7, statuses


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 401
    except httpx.HTTPError:
        return False


# --- Budgets with a period ---------------------------------------------------------------------------


def test_a_monthly_budget_refuses_naming_itself_and_starts_again_next_month(key_api, queue_only):
    api = key_api(budget=Decimal("0.25"), budget_period="month")
    assert api.submit().status_code == 201
    assert api.submit(prompt="two").status_code == 201
    refused = api.submit(prompt="three")
    assert refused.status_code == 402
    assert refused.json()["error"]["message"] == (
        "This task (about $0.1206) would go over the key's monthly budget: $0.0088 of $0.25 is left."
    )
    # A month later: the tasks of the month before no longer count.
    last_month = period_start("month") - timedelta(days=3)
    Task.objects.update(created_at=last_month)
    assert api.submit(prompt="three").status_code == 201


@pytest.mark.parametrize(
    ("period", "now", "start"),
    [
        # 03:00 UTC on Dec 1 is still Nov 30 in New York: the month is November's, from its 1st.
        ("month", datetime(2026, 12, 1, 3, 0, tzinfo=UTC), datetime(2026, 11, 1, 4, 0, tzinfo=UTC)),
        ("month", datetime(2026, 12, 1, 6, 0, tzinfo=UTC), datetime(2026, 12, 1, 5, 0, tzinfo=UTC)),
        ("week", datetime(2026, 12, 2, 12, 0, tzinfo=UTC), datetime(2026, 11, 30, 5, 0, tzinfo=UTC)),
        ("day", datetime(2026, 12, 2, 3, 0, tzinfo=UTC), datetime(2026, 12, 1, 5, 0, tzinfo=UTC)),
    ],
)
def test_budget_periods_follow_the_calendar_of_the_time_zone(settings, period, now, start):
    settings.TIME_ZONE = "America/New_York"
    timezone.activate("America/New_York")
    try:
        assert period_start(period, now) == start
    finally:
        timezone.deactivate()


def test_an_all_time_budget_has_no_period_start():
    assert period_start("") is None


# --- Rolling a key -------------------------------------------------------------------------------


def test_a_rolled_key_takes_the_new_secret_and_the_old_one_until_its_grace_ends(
    client, user, catalog, django_capture_on_commit_callbacks
):
    issued = issue_key(user, name="rolling", budget=Decimal(5))
    old = Api(client, issued.secret, django_capture_on_commit_callbacks)
    task_id = old.submit().json()["task_id"]
    rolled = roll_key(issued.key, timedelta(hours=1))
    new = Api(client, rolled.secret, django_capture_on_commit_callbacks)
    assert rolled.secret != issued.secret
    assert new.get(f"/api/v1/tasks/{task_id}").status_code == 200  # the same key: its tasks too
    assert old.get(f"/api/v1/tasks/{task_id}").status_code == 200  # within the grace period
    # The grace period ends (and the process's one-second copy of the key with it).
    ApiKey.objects.filter(pk=issued.key.pk).update(previous_valid_until=timezone.now() - timedelta(seconds=1))
    forget_recent_keys()
    refused = old.get(f"/api/v1/tasks/{task_id}")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_key"
    assert new.get(f"/api/v1/tasks/{task_id}").status_code == 200
    assert ApiKey.objects.get(pk=issued.key.pk).budget == Decimal(5)


def test_a_key_rolled_without_grace_stops_its_old_secret_at_once_and_a_second_roll_ends_the_first(
    client, user, catalog, django_capture_on_commit_callbacks
):
    issued = issue_key(user)
    first = roll_key(issued.key, timedelta(0))
    assert (
        Api(client, issued.secret, django_capture_on_commit_callbacks).get("/api/v1/models").status_code
        == 401
    )
    second = roll_key(ApiKey.objects.get(pk=issued.key.pk), timedelta(hours=1))
    codes = [
        Api(client, secret, django_capture_on_commit_callbacks).get("/api/v1/models").status_code
        for secret in (issued.secret, first.secret, second.secret)
    ]
    assert codes == [401, 200, 200]
    third = roll_key(ApiKey.objects.get(pk=issued.key.pk), timedelta(hours=1))
    codes = [
        Api(client, secret, django_capture_on_commit_callbacks).get("/api/v1/models").status_code
        for secret in (first.secret, second.secret, third.secret)
    ]
    assert codes == [401, 200, 200]


# --- From the keys page ----------------------------------------------------------------------------


@pytest.fixture
def signed_in(client, user, catalog):
    client.force_login(user)
    return client


def test_a_key_made_on_the_page_carries_its_limits_and_the_page_shows_them(signed_in):
    answer = signed_in.post(
        reverse("key-create"),
        {
            "name": "ci",
            "budget": "5",
            "budget_period": "month",
            "requests_per_minute": "30",
            "models": [SEED],
        },
    )
    assert answer.status_code == 200
    key = ApiKey.objects.get(name="ci")
    assert (key.budget, key.budget_period, key.requests_per_minute, key.allowed_models) == (
        Decimal(5),
        "month",
        30,
        [SEED],
    )
    page = signed_in.get(reverse("keys")).content.decode()
    assert "30 a minute" in page and "per month" in page and "Gemini" in page


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"budget_period": "week"}, "budget_period", "Set a budget for it to reset"),
        ({"requests_per_minute": "601"}, "requests_per_minute", "less than or equal to 600"),
        ({"requests_per_minute": "0"}, "requests_per_minute", "greater than or equal to 1"),
        ({"models": ["no-such-model"]}, "models", "not one of the available choices"),
    ],
)
def test_the_key_form_names_the_field_of_a_bad_limit_and_makes_no_key(signed_in, fields, field, message):
    answer = signed_in.post(reverse("key-create"), {"name": "bad", **fields})
    assert answer.status_code == 200
    assert message in answer.content.decode()
    assert answer.context["new_key_form"].errors[field]
    assert not ApiKey.objects.exists()


def test_rolling_on_the_page_shows_the_new_secret_once_and_keeps_the_old_for_the_grace_chosen(
    signed_in, user, client, django_capture_on_commit_callbacks
):
    issued = issue_key(user, name="app")
    answer = signed_in.post(reverse("key-action", args=[issued.key.pk, "roll"]), {"grace": "3600"})
    html = answer.content.decode()
    secret = answer.context["new_secret"]
    assert secret in html and "The old secret keeps working until" in html
    assert secret not in signed_in.get(reverse("keys")).content.decode()
    for presented in (issued.secret, secret):
        assert (
            Api(client, presented, django_capture_on_commit_callbacks).get("/api/v1/models").status_code
            == 200
        )
    bad = signed_in.post(reverse("key-action", args=[issued.key.pk, "roll"]), {"grace": "forever"})
    assert "Choose how long the old secret keeps working." in bad.content.decode()
    assert ApiKey.objects.get(pk=issued.key.pk).prefix == secret[:16]


def test_the_keys_row_says_until_when_the_rolled_from_secret_works_and_the_log_names_the_zone(
    signed_in, user
):
    """After the one-time box is gone (a reload), the key's row still says that its old secret
    works, and until when; once that secret stopped, it says nothing more."""
    issued = issue_key(user, name="app")
    signed_in.post(reverse("key-action", args=[issued.key.pk, "roll"]), {"grace": "3600"})
    row = signed_in.get(reverse("keys")).content.decode()
    assert f"the old <code>{issued.key.prefix}…</code> works until" in row
    assert AuditEntry.objects.get(action="key.rolled").detail.endswith(" UTC")
    assert row.count('class="muted small key-previous"') == 1
    signed_in.post(reverse("key-action", args=[issued.key.pk, "roll"]), {"grace": "0"})
    assert "key-previous" not in signed_in.get(reverse("keys")).content.decode()
    ApiKey.objects.filter(pk=issued.key.pk).update(
        previous_prefix="pg_live_ended000", previous_valid_until=timezone.now() - timedelta(seconds=1)
    )
    assert "key-previous" not in signed_in.get(reverse("keys")).content.decode()


def test_another_persons_key_cannot_be_rolled(signed_in, other_user):
    issued = issue_key(other_user)
    assert (
        signed_in.post(reverse("key-action", args=[issued.key.pk, "roll"]), {"grace": "0"}).status_code == 404
    )
    assert ApiKey.objects.get(pk=issued.key.pk).prefix == issued.key.prefix


# --- The audit log -------------------------------------------------------------------------------


def test_every_change_is_in_the_audit_log_with_who_and_from_where(signed_in, user, catalog, settings):
    settings.MINDVIDEO_BASE_URL = "http://127.0.0.1:9"  # the upstream test call fails fast, offline
    signed_in.post(reverse("key-create"), {"name": "web-key"})
    key = ApiKey.objects.get(name="web-key")
    for action in ("disable", "enable"):
        signed_in.post(reverse("key-action", args=[key.pk, action]))
    signed_in.post(reverse("key-action", args=[key.pk, "roll"]), {"grace": "0"})
    signed_in.post(reverse("key-action", args=[key.pk, "delete"]))
    signed_in.post(reverse("webhook-secret-rotate"))
    signed_in.post(
        reverse("pass-create"), {"name": "Friday", "models": [SEED], "spend_cap": "5", "hours": "24"}
    )
    from playground.keys.models import DemoPass

    signed_in.post(reverse("pass-revoke", args=[DemoPass.objects.get().pk]))
    store_upstream_key(user, "mv-secret-0000-1234")
    delete_upstream_key(user)
    actions = list(
        AuditEntry.objects.filter(owner=user).order_by("created_at", "id").values_list("action", flat=True)
    )
    assert actions == [
        "key.created",
        "key.disabled",
        "key.enabled",
        "key.rolled",
        "key.deleted",
        "webhook_secret.rotated",
        "pass.created",
        "pass.revoked",
        "upstream_key.set",
        "upstream_key.deleted",
    ]
    by_person = AuditEntry.objects.filter(owner=user, action="key.created").get()
    assert by_person.actor == user and by_person.ip == "127.0.0.1"
    assert AuditEntry.objects.get(action="upstream_key.set").actor is None  # no person: a service call
    assert "mv-secret" not in " ".join(AuditEntry.objects.values_list("subject", flat=True))
    page = signed_in.get(reverse("keys")).content.decode()
    assert "key.rolled" in page and "upstream key …1234" in page


def test_the_audit_log_exports_as_csv_without_formulas_and_only_ones_own(signed_in, user, other_user):
    issue_key(user, name='=HYPERLINK("http://evil")')
    issue_key(other_user, name="bobs-secret-app")
    call_command("issue_key", user.username, "--name", "from-cli", stdout=io.StringIO())
    answer = signed_in.get(reverse("audit-csv"))
    assert answer["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(answer.content.decode())))
    assert rows[0] == ["time (UTC)", "action", "subject", "detail", "by", "from"]
    subjects = [row[2] for row in rows[1:]]
    assert len(rows) == 3 and all(row[1] == "key.created" for row in rows[1:])
    assert any("from-cli" in subject for subject in subjects)
    assert all(not subject.startswith("=") for subject in subjects)
    assert "bobs-secret-app" not in answer.content.decode()
    assert all(row[4] == "command line" for row in rows[1:])


def test_the_audit_log_on_the_page_updates_with_an_htmx_change(signed_in):
    answer = signed_in.post(reverse("key-create"), {"name": "live"}, headers={"HX-Request": "true"})
    html = answer.content.decode()
    assert 'id="audit-log"' in html and 'hx-swap-oob="outerHTML"' in html and "key.created" in html


# --- The command -----------------------------------------------------------------------------------


def test_issue_key_takes_models_rate_budget_period_and_expiry(user, catalog):
    out = io.StringIO()
    call_command(
        "issue_key",
        user.username,
        "--name",
        "ci",
        "--models",
        f"{SEED},{OTHER}",
        "--rpm",
        "20",
        "--budget",
        "10",
        "--period",
        "week",
        "--expires",
        "2099-01-31",
        stdout=out,
    )
    key = ApiKey.objects.get(name="ci")
    assert out.getvalue().strip().startswith("pg_live_")
    assert key.allowed_models == [SEED, OTHER] and key.requests_per_minute == 20
    assert (key.budget, key.budget_period) == (Decimal(10), "week")
    assert AuditEntry.objects.get().detail.startswith("budget $10.00 per week, 20 requests a minute")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", "nope"], "no such model nope"),
        (["--rpm", "0"], "--rpm must be a whole number"),
        (["--rpm", "601"], "at most 600"),
        (["--period", "month"], "--period needs a --budget"),
    ],
)
def test_issue_key_refuses_bad_limits_clearly(user, catalog, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("issue_key", user.username, *args, stdout=io.StringIO())
    assert not ApiKey.objects.exists()


def test_a_demo_pass_made_and_revoked_by_a_service_is_audited_too(user, catalog):
    demo_pass = create_pass(user, "Expo", [SEED], Decimal(3), 2)
    revoke_pass(demo_pass)
    rotate_webhook_secret(user.pk, keep_previous=False)
    entries = AuditEntry.objects.filter(owner=user).order_by("created_at", "id")
    assert [(e.action, e.subject) for e in entries][:2] == [
        ("pass.created", "demo pass “Expo”"),
        ("pass.revoked", "demo pass “Expo”"),
    ]
    assert entries.last().detail == "earlier secrets stopped at once"
