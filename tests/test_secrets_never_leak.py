"""A key we issue exists in clear exactly once: in the response that created it. A webhook signing
secret exists in clear only in its owner's Reveal / Rotate answers (and in the signatures it makes)."""

import logging
import re
import subprocess
import sys

import pytest
from django.db import connection
from django.urls import reverse
from standardwebhooks import Webhook

from playground.generations.models import TaskEvent
from playground.keys.models import ApiKey, WebhookSecret
from playground.keys.services import issue_key

from .fixtures_http import Reply
from .helpers import ROOT, SEED, seed_input


@pytest.mark.sqlite  # scans the SQLite database file
@pytest.mark.django_db(transaction=True)
def test_it_shows_an_issued_secret_once_and_never_in_pages_logs_rows_or_the_database_file(
    client, admin_client, user, catalog, caplog
):
    caplog.set_level(logging.DEBUG)
    client.force_login(user)
    created = client.post(reverse("key-create"), {"name": "leak-check"}).content.decode()
    key = ApiKey.objects.get(user=user)
    secret = created[created.index("pg_live_") :][:46]
    assert secret.startswith(key.prefix)
    headers = {"Authorization": f"Bearer {secret}"}
    submitted = client.post(
        "/api/v1/tasks",
        {"model": SEED, "input": seed_input()},
        content_type="application/json",
        headers=headers,
    )
    assert submitted.status_code == 201, submitted.content
    task_id = submitted.json()["task_id"]
    # Each page shows the key (or was answered for it), so "the secret is not on it" means something.
    pages = {
        "keys page": (client.get(reverse("keys")), 200, [key.prefix, "leak-check"]),
        "usage page": (client.get(reverse("usage")), 200, [f"leak-check ({key.prefix}…)"]),
        "admin key list": (admin_client.get("/admin/keys/apikey/"), 200, [key.prefix, "leak-check", "alice"]),
        "admin key page": (
            admin_client.get(f"/admin/keys/apikey/{key.pk}/change/"),
            200,
            [key.prefix, key.secret_hash],
        ),
        "API model list": (client.get("/api/v1/models", headers=headers), 200, ['"slug"']),
        "API task": (client.get(f"/api/v1/tasks/{task_id}", headers=headers), 200, [task_id]),
        "API error": (
            client.post("/api/v1/tasks", {"model": "nope"}, content_type="application/json", headers=headers),
            422,
            ['"unknown_model"'],
        ),
    }
    for name, (page, status, shown) in pages.items():
        body = page.content.decode()
        assert page.status_code == status, (name, page.status_code)
        for text in shown:
            assert text in body, (name, text)
        assert secret not in body, f"the secret is on the {name}"
    assert secret not in caplog.text
    for row in ApiKey.objects.values():
        assert all(secret not in str(value) for value in row.values())
    assert not in_database_file(secret), "the secret is in the database file"


WHSEC = re.compile(r"whsec_[A-Za-z0-9+/]{32}")


@pytest.mark.sqlite  # scans the SQLite database file
@pytest.mark.django_db(transaction=True)
def test_a_webhook_secret_is_shown_to_its_owner_on_request_and_never_in_logs_events_or_the_database_file(
    client, user, other_user, catalog, http_server, caplog
):
    caplog.set_level(logging.DEBUG)
    client.force_login(user)
    first = WHSEC.search(client.post(reverse("webhook-secret-reveal")).content.decode()).group()
    second = WHSEC.search(client.post(reverse("webhook-secret-rotate")).content.decode()).group()
    hook = http_server.route("/hook", Reply(500), Reply(200))  # a retry: two attempts, two events
    headers = {"Authorization": f"Bearer {issue_key(user).secret}"}
    submitted = client.post(
        "/api/v1/tasks",
        {"model": SEED, "input": seed_input(), "webhook_url": hook},
        content_type="application/json",
        headers=headers,
    )
    task_id = submitted.json()["task_id"]
    deliveries = http_server.requests_to("/hook")
    assert len(deliveries) == 2  # both secrets were in use: each signed both attempts
    for delivery in deliveries:
        for secret in (first, second):
            Webhook(secret).verify(delivery.body, delivery.headers)
    # Each page shows what it is about, so "no secret on it" means something.
    pages = {
        "owner's keys page": (client.get(reverse("keys")), [f"whsec_…{second[-4:]}", f"whsec_…{first[-4:]}"]),
        "task page": (client.get(reverse("task", args=[task_id])), ["Webhook delivered (200)."]),
        "API events": (
            client.get(f"/api/v1/tasks/{task_id}/events", headers=headers),
            ["Webhook failed (attempt 1 of 5, retry in 10 s)", "Webhook delivered (200)."],
        ),
        "API reference": (client.get(reverse("api-reference")), ["webhook-signature"]),
    }
    client.force_login(other_user)
    pages["other user's keys page"] = (client.get(reverse("keys")), ["Webhook signing secret"])
    pages["other user's reveal"] = (client.post(reverse("webhook-secret-reveal")), ["whsec_"])
    for name, (page, shown) in pages.items():
        body = page.content.decode()
        assert page.status_code == 200, (name, page.status_code)
        for text in shown:
            assert text in body, (name, text)
        for secret in (first, second):
            assert secret.removeprefix("whsec_") not in body, f"a secret is on the {name}"
    events = " ".join(TaskEvent.objects.values_list("message", flat=True))
    for secret in (first, second):
        bare = secret.removeprefix("whsec_")
        assert bare not in caplog.text and bare not in events
        for row in WebhookSecret.objects.values():
            assert all(bare not in str(value) for value in row.values())
        assert not in_database_file(bare), "a webhook secret is in the database file"


def in_database_file(text: str) -> bool:
    """Whether `text` is anywhere in the SQLite database file or its write-ahead log, read from
    another process (reading the file here would drop SQLite's locks)."""
    scan = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; d=open(sys.argv[1],'rb').read(); "
            "import os; w=sys.argv[1]+'-wal'; d+=open(w,'rb').read() if os.path.exists(w) else b''; "
            "sys.exit(1 if sys.argv[2].encode() in d else 0)",
            connection.settings_dict["NAME"],
            text,
        ],
        cwd=ROOT,
    )
    assert scan.returncode in (0, 1), "the scan itself failed"
    return scan.returncode == 1
