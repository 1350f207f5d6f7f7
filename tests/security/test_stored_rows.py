"""Issue 13, "No poison": pages never fail on a stored row. A task an older version let in, with a
lone surrogate or a NUL in its input (stored in SQLite as the JSON escapes "\\ud800", "\\u0000"),
renders on every page that shows it: history, the task page, its re-run, compare, the visit strip,
usage and its CSV, the API. Migration 0006 repairs such rows in place."""

import importlib
import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from playground.generations.models import Task, TaskEvent

from ..helpers import SEED

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="PostgreSQL's jsonb refuses such text: no such row can exist there"
)

POISON_PROMPT = "lone \ud800 surrogate, a nul \x00 and a bell \x07 in a prompt"
SHOWN_PROMPT = "lone \ufffd surrogate, a nul  and a bell \ufffd in a prompt"
POISON_INPUT = {"prompt": POISON_PROMPT, "size": "1:1\x00", "resolution": "1K", "n": 1, "k\udfff": "v"}


def store_as_an_older_version(task: Task, **fields) -> None:
    """Write JSON fields the way an older version did: `json.dumps` text (the escapes above),
    straight into the row, past any rule of today's code."""
    sets = ", ".join(f"{name} = %s" for name in fields)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE generations_task SET {sets} WHERE id = %s",  # noqa: S608 (names are ours)
            [*(json.dumps(value) for value in fields.values()), task.pk],
        )


def stored_json(task: Task, name: str):
    """A JSON field as it is in the row, not as the model reads it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {name} FROM generations_task WHERE id = %s", [task.pk])  # noqa: S608
        return json.loads(cursor.fetchone()[0])


@pytest.fixture
def poisoned(make_task, user, catalog):
    """A succeeded task (with its output files), then poisoned as an older version stored it."""
    task = make_task(user, catalog)
    store_as_an_older_version(
        task,
        input=POISON_INPUT,
        error={"code": "engine_crashed", "message": "crashed on \ud800\x00"},
    )
    TaskEvent.objects.create(task=task, kind="message", status=task.status, message="an old \x00 message")
    return task


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def test_the_row_is_stored_as_an_older_version_left_it(poisoned):
    assert stored_json(poisoned, "input")["prompt"] == POISON_PROMPT


def test_every_page_showing_the_task_renders_it(poisoned, signed_in, key):
    pages = {
        "history": reverse("history"),
        "history filtered by its prompt": reverse("history") + "?q=surrogate",
        "task page": reverse("task", args=[poisoned.pk]),
        "re-run": reverse("play", args=[SEED]) + f"?from={poisoned.pk}",
        "compare": reverse("compare") + f"?ids={poisoned.pk}&ids={poisoned.pk}",
        "strip item": reverse("task-thumb", args=[poisoned.pk]),
        "usage": reverse("usage"),
        "usage CSV": reverse("usage-csv"),
    }
    for name, url in pages.items():
        response = signed_in.get(url)
        assert response.status_code == (286 if name == "strip item" else 200), name  # 286: ended
        response.content.decode("utf-8")  # what went out is UTF-8
    assert SHOWN_PROMPT in signed_in.get(reverse("history")).content.decode()
    assert SHOWN_PROMPT in signed_in.get(reverse("task", args=[poisoned.pk])).content.decode()


def test_the_visit_strip_and_the_htmx_panel_render_it(poisoned, signed_in):
    session = signed_in.session
    session["visit_tasks"] = [poisoned.pk]
    session.save()
    page = signed_in.get(reverse("play", args=[SEED]))
    assert page.status_code == 200
    assert SHOWN_PROMPT in page.content.decode()
    panel = signed_in.get(reverse("task", args=[poisoned.pk]), headers={"HX-Request": "true"})
    assert panel.status_code == 286


def test_the_api_shows_it(poisoned, api):
    for path in (f"/api/v1/tasks/{poisoned.pk}", "/api/v1/tasks", f"/api/v1/tasks/{poisoned.pk}/events"):
        response = api.get(path)
        assert response.status_code == 200, path
        response.content.decode("utf-8")
    assert api.get(f"/api/v1/tasks/{poisoned.pk}").json()["error"]["message"] == "crashed on \ufffd"


def test_the_rerun_form_holds_the_repaired_text_and_runs(poisoned, signed_in):
    form = signed_in.get(reverse("play", args=[SEED]) + f"?from={poisoned.pk}").context["form"]
    assert form.initial["prompt"] == SHOWN_PROMPT
    response = signed_in.post(
        reverse("play", args=[SEED]),
        {"prompt": form.initial["prompt"], "size": "1:1", "resolution": "1K", "n": 1},
    )
    assert response.status_code == 302
    assert Task.objects.latest("created_at").input["prompt"] == SHOWN_PROMPT


def test_the_task_can_still_be_cancelled_or_downloaded(poisoned, signed_in):
    assert signed_in.post(reverse("task-cancel", args=[poisoned.pk])).status_code == 302
    assert signed_in.get(reverse("task-zip", args=[poisoned.pk])).status_code == 200


# --- The migration ------------------------------------------------------------------------------------


def test_migration_0006_repairs_stored_rows_and_leaves_good_ones_alone(poisoned, make_task, user, catalog):
    good = make_task(user, catalog, prompt="月光下的竹林小径 🌙\twith\r\nbreaks")
    good_before = stored_json(good, "input"), stored_json(good, "output")
    output_before = stored_json(poisoned, "output")
    migration = importlib.import_module("playground.generations.migrations.0006_repair_stored_text")

    before_0006 = MigrationExecutor(connection).loader.project_state(("generations", "0005_input_files"))

    migration.repair_stored_text(before_0006.apps, None)

    assert stored_json(poisoned, "input") == {
        "prompt": SHOWN_PROMPT,
        "size": "1:1",
        "resolution": "1K",
        "n": 1,
        "k\ufffd": "v",
    }
    assert stored_json(poisoned, "error") == {"code": "engine_crashed", "message": "crashed on \ufffd"}
    assert stored_json(poisoned, "output") == output_before  # it had no text to repair
    assert (stored_json(good, "input"), stored_json(good, "output")) == good_before
