"""What a submit costs the database, statement by statement: the API's `POST /api/v1/tasks` and the
browser's form, for the default model on the local engine, in the steady state (the key's rate
count and `last_used` are not written on every request: see `access.ratelimit` and
`keys.services._touch`). Real transactions, so BEGIN and COMMIT are counted, and the real queue, so
the enqueue after commit is too."""

import json
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from playground.catalog.models import CatalogEntry
from playground.catalog.schema_forms import as_form_data
from playground.generations.models import Task
from playground.keys.services import issue_key

from .helpers import SEED, at_once, seed_input

pytestmark = pytest.mark.django_db(transaction=True)

PLAY = reverse("play", args=[SEED])
TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"(\w+)"')


@pytest.fixture(autouse=True)
def real_queue(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    # A client's key is read once and kept (PLAYGROUND_KEY_CACHE_SECONDS, 1 s by default): the warm-up
    # reads it; kept longer here so that a slow machine measures the same steady state.
    settings.PLAYGROUND_KEY_CACHE_SECONDS = 60


def statements(captured: CaptureQueriesContext) -> list[str]:
    """Each statement as its verb and its first table: `SELECT keys_apikey`, `BEGIN`."""
    shapes = []
    for query in captured.captured_queries:
        verb = query["sql"].split(None, 1)[0].upper()
        table = TABLE.search(query["sql"])
        shapes.append(f"{verb} {table[1]}" if table and verb != "BEGIN" else verb)
    return shapes


def api_post(client, secret, prompt, **headers):
    body = json.dumps({"model": SEED, "input": seed_input(prompt=prompt)})
    headers = {"Authorization": f"Bearer {secret}", **headers}
    return client.post("/api/v1/tasks", body, content_type="application/json", headers=headers)


@pytest.fixture
def secret(user, catalog, client):
    secret = issue_key(user, name="queries").secret
    assert api_post(client, secret, "warm up").status_code == 201  # leases rate hits, sets last_used
    return secret


@pytest.fixture
def signed_in(client, user, catalog):
    client.force_login(user)
    return client


def form(token: str) -> dict:
    """The seed model's form as the browser posts it, with its one-time token."""
    entry = CatalogEntry.objects.get(slug=SEED)
    return {**as_form_data(entry, seed_input(prompt="a fox")), "form_token": token}


def test_an_api_submit_is_8_statements_including_its_budget_begin_commit_and_the_enqueue(client, secret):
    # Not on every request, so not here: the key itself (read once a second), its rate count
    # (RATE_COUNTER_QUERIES once per lease of 12 requests) and its `last_used` (at most once a minute).
    with CaptureQueriesContext(connection) as captured:
        assert api_post(client, secret, "seven").status_code == 201
    assert statements(captured) == [
        "SELECT catalog_catalogentry",  # the model (find_model)
        "BEGIN",
        "SELECT keys_apikey",  # its budget as it is now (none: nothing locked), not the kept copy's
        "INSERT generations_task",
        "INSERT generations_taskevent",  # its `queued` event
        "COMMIT",
        "INSERT django_tasks_database_dbtaskresult",  # the queue's job, once the task has committed
        "SELECT generations_task",  # its place in line, which the answer gives (`queue_position`)
    ]


def test_an_api_submit_with_an_idempotency_key_looks_for_its_replay_once(client, secret):
    """Without a budget, a repeat that comes in while this one is being created is caught by the
    unique constraint (tests/test_api_idempotency.py races sixteen), not by a second read."""
    with CaptureQueriesContext(connection) as captured:
        assert api_post(client, secret, "keyed", **{"Idempotency-Key": "k-1"}).status_code == 201
    assert statements(captured) == [
        "SELECT generations_task",  # a task made with this key already? (answered as a replay)
        "SELECT catalog_catalogentry",
        "BEGIN",
        "SELECT keys_apikey",
        "INSERT generations_task",
        "INSERT generations_taskevent",
        "COMMIT",
        "INSERT django_tasks_database_dbtaskresult",
        "SELECT generations_task",  # its place in line
    ]


def test_an_api_replay_is_1_statement_the_task_with_its_model_and_its_place_while_queued(client, secret):
    assert api_post(client, secret, "again", **{"Idempotency-Key": "k-2"}).status_code == 201
    with CaptureQueriesContext(connection) as captured:
        assert api_post(client, secret, "again", **{"Idempotency-Key": "k-2"}).status_code == 200
    assert statements(captured) == ["SELECT generations_task", "SELECT generations_task"]
    Task.objects.update(status="succeeded")
    with CaptureQueriesContext(connection) as captured:
        assert api_post(client, secret, "again", **{"Idempotency-Key": "k-2"}).status_code == 200
    assert statements(captured) == ["SELECT generations_task"]  # not queued: no place to count


def test_a_submit_against_a_budget_looks_for_its_replay_again_under_the_lock(client, user, catalog):
    """With a limit to count against, a repeat created while this one waited for the lock must be
    replayed (200), not counted against itself (402): tests/test_budgets.py races it."""
    secret = issue_key(user, name="capped", budget=Decimal("10")).secret
    assert api_post(client, secret, "warm up").status_code == 201
    with CaptureQueriesContext(connection) as captured:
        assert api_post(client, secret, "capped", **{"Idempotency-Key": "k-3"}).status_code == 201
    assert statements(captured) == [
        "SELECT generations_task",
        "SELECT catalog_catalogentry",
        "BEGIN",
        "SELECT keys_apikey",  # the key's row locked, its budget as it is now (lock_spend_limits)
        "SELECT generations_task",  # made while this one waited for the lock?
        "SELECT generations_task",  # the key's spend (check_spend_limits)
        "INSERT generations_task",
        "INSERT generations_taskevent",
        "COMMIT",
        "INSERT django_tasks_database_dbtaskresult",
        "SELECT generations_task",  # its place in line
    ]


BROWSER_SUBMIT = [
    "SELECT django_session",
    "SELECT auth_user",  # the signed-in account (Django's session check)
    "SELECT catalog_catalogentry",  # the page's model, which is also the one submitted
    "SELECT generations_task",  # a task made with this form's token already? (a double click)
    "BEGIN",
    "INSERT generations_task",
    "INSERT generations_taskevent",
    "COMMIT",
    "INSERT django_tasks_database_dbtaskresult",
]


def test_a_browser_submit_is_14_statements_with_the_status_panel_and_the_visit_strip(signed_in):
    data = form("form-token-1")
    with CaptureQueriesContext(connection) as captured:
        assert signed_in.post(PLAY, data, headers={"HX-Request": "true"}).status_code == 200
    assert statements(captured) == [
        *BROWSER_SUBMIT,
        "SELECT generations_taskevent",  # the task with its events as they are now, for the panel
        # Its place in line: the accounts with tasks waiting (how many wait and run, which is this
        # task's and how many of its waiting tasks are older), in one statement.
        "SELECT generations_task",
        "BEGIN",
        "UPDATE django_session",  # the visit's strip now starts with the task
        "COMMIT",
    ]


def test_a_browser_submit_without_javascript_is_12_statements_and_a_redirect(signed_in):
    data = form("form-token-1")
    with CaptureQueriesContext(connection) as captured:
        assert signed_in.post(PLAY, data).status_code == 302
    assert statements(captured) == [*BROWSER_SUBMIT, "BEGIN", "UPDATE django_session", "COMMIT"]


def test_a_double_clicked_browser_submit_replays_without_writing_the_session(signed_in):
    data = form("form-token-1")
    signed_in.post(PLAY, data, headers={"HX-Request": "true"})
    with CaptureQueriesContext(connection) as captured:
        assert signed_in.post(PLAY, data, headers={"HX-Request": "true"}).status_code == 200
    assert statements(captured) == [
        "SELECT django_session",
        "SELECT auth_user",
        "SELECT catalog_catalogentry",
        "SELECT generations_task",  # the task this token made: a replay
        "SELECT generations_taskevent",
        "SELECT generations_task",  # its place in line
    ]
    assert Task.objects.count() == 1


def test_a_double_click_sent_at_once_from_two_connections_makes_one_task(user, catalog):
    """No read under the lock catches the second: the unique constraint does, and it replays."""
    clients = [Client(), Client()]
    for client in clients:
        client.force_login(user)
    data = form("raced-token")
    answers = []
    at_once(lambda: answers.append(clients.pop().post(PLAY, data)), 2)  # a client each
    [task] = Task.objects.all()
    assert [answer.status_code for answer in answers] == [302, 302]
    assert {answer["Location"] for answer in answers} == {reverse("task", args=[task.pk])}


def test_a_batch_of_three_is_11_statements_one_insert_per_table_and_a_job_per_task(client, secret):
    """One model read, one lock of the budgets and one insert each of the batch, its tasks and
    their events, whatever the number of cells; then a job per task once they have committed."""
    body = json.dumps({"model": SEED, "input": seed_input(), "vary": {"size": ["1:1", "16:9", "9:16"]}})
    headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": "b-1"}
    with CaptureQueriesContext(connection) as captured:
        answer = client.post("/api/v1/batches", body, content_type="application/json", headers=headers)
    assert answer.status_code == 201
    assert statements(captured) == [
        "SELECT generations_batch",  # a batch made with this key already? (answered as a replay)
        "SELECT catalog_catalogentry",  # the model, once for all its cells
        "BEGIN",
        "SELECT keys_apikey",  # its budget as it is now (none: nothing locked)
        "INSERT generations_batch",  # first: a twin sent at once stops here (the unique constraint)
        "INSERT generations_task",  # the three tasks in one statement
        "INSERT generations_taskevent",  # and their `queued` events
        "COMMIT",
        *["INSERT django_tasks_database_dbtaskresult"] * 3,  # a job per task, once they committed
    ]
