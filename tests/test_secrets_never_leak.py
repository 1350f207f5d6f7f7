"""A key we issue exists in clear exactly once: in the response that created it."""

import logging
import subprocess
import sys

import pytest
from django.db import connection
from django.urls import reverse

from playground.keys.models import ApiKey

from .helpers import ROOT


@pytest.mark.sqlite  # scans the SQLite database file
@pytest.mark.django_db(transaction=True)
def test_an_issued_secret_appears_once_and_never_in_logs_rows_or_the_database_file(
    client, user, catalog, caplog
):
    caplog.set_level(logging.DEBUG)
    client.force_login(user)
    created = client.post(reverse("key-create"), {"name": "leak-check"}).content.decode()
    key = ApiKey.objects.get(user=user)
    secret = created[created.index("pg_live_") :][:46]
    assert secret.startswith(key.prefix)
    headers = {"Authorization": f"Bearer {secret}"}
    pages = [
        client.get(reverse("keys")),
        client.get(reverse("usage")),
        client.get("/api/v1/models", headers=headers),
        client.post("/api/v1/tasks", {"model": "nope"}, content_type="application/json", headers=headers),
        client.get("/admin/keys/apikey/"),
    ]
    for page in pages:
        assert secret not in page.content.decode()
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
