"""A key we issue exists in clear exactly once: in the response that created it."""

import logging
import subprocess
import sys

import pytest
from django.db import connection
from django.urls import reverse

from playground.keys.models import ApiKey

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
    # Read the database file from another process: reading it here would drop SQLite's locks.
    name = connection.settings_dict["NAME"]
    scan = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; d=open(sys.argv[1],'rb').read(); "
            "import os; w=sys.argv[1]+'-wal'; d+=open(w,'rb').read() if os.path.exists(w) else b''; "
            "sys.exit(1 if sys.argv[2].encode() in d else 0)",
            name,
            secret,
        ],
        cwd=ROOT,
    )
    assert scan.returncode == 0, "the secret is in the database file"
