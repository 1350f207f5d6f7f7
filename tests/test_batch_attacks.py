"""Attacks on POST /api/v1/batches and GET /api/v1/batches/{id}: each test here is a finding of the
batches review (or a check that held), reproduced through the API."""

import time
from decimal import Decimal

import pytest

from playground.generations.models import Batch, InputFile, Task

from .helpers import SEED, data_uri, seed_input, solid_png

BATCHES = "/api/v1/batches"


def shared(**overrides):
    data = {key: value for key, value in seed_input().items() if key != "size"}
    return {**data, **overrides}


# --- Cheap refusals stay cheap -------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["vary", "models"])
def test_a_huge_list_of_values_or_models_is_refused_in_linear_time(api, queue_only, where):
    """The duplicate check compared each value with a copy of every value before it (quadratic), and
    ran before the cap: 20,000 values (a 120 KB body) held a worker ~4 s, 200,000 (1.3 MB, well
    inside the 32 MB body limit) ~7 minutes. Now the cap is checked first."""
    many = [f"v{i}" for i in range(60_000)]
    body = (
        {"model": SEED, "input": shared(), "vary": {"size": many}}
        if where == "vary"
        else {"models": many, "input": shared()}
    )
    started = time.monotonic()
    answer = api.post(BATCHES, body)
    elapsed = time.monotonic() - started
    assert answer.status_code == 422, answer.content[:300]
    assert answer.json()["error"]["code"] == "batch_too_large"
    assert "60000 tasks" in answer.json()["error"]["message"]
    assert elapsed < 3, elapsed
    assert not Task.objects.exists()


# --- Money -----------------------------------------------------------------------------------------------


def test_a_batch_whose_total_is_past_what_the_ledger_holds_is_422_not_500(api, queue_only, catalog):
    """Each cell's estimate is held to MAX_PRICE (12 digits, 4 places), but their sum was not: two
    cells of 60 million dollars each (an entry whose count has no maximum) overflowed
    Batch.cost_estimate and answered 500."""
    entry = catalog[SEED]
    del entry.input_schema["properties"]["n"]["maximum"]
    entry.save()
    body = {"model": SEED, "input": shared(), "vary": {"n": [500_000_000, 600_000_000]}}
    answer = api.post(BATCHES, body)
    assert answer.status_code == 422, answer.content[:300]
    assert answer.json()["error"]["errors"][0]["code"] == "no_price"
    assert not Task.objects.exists() and not Batch.objects.exists()


# --- Inputs ------------------------------------------------------------------------------------------------


def test_a_varied_data_uri_is_kept_as_its_input_file_not_its_bytes_in_the_batch(api, queue_only):
    """A varied media field (image_urls) holding data URIs: each task references its stored input
    file, but the batch's axes kept every data URI's bytes (megabytes in the batch row, answered in
    full by every POST replay and GET of the batch, and out of reach of the input files' rules)."""
    images = [data_uri(solid_png(color, size=(64, 64))) for color in ((255, 0, 0), (0, 0, 255))]
    body = {"model": SEED, "input": shared(size="1:1"), "vary": {"image_urls": [[images[0]], [images[1]]]}}
    answer = api.post(BATCHES, body)
    assert answer.status_code == 201, answer.content[:300]
    assert InputFile.objects.count() == 2
    assert b"data:image" not in answer.content
    detail = api.get(f"{BATCHES}/{answer.json()['batch_id']}")
    assert b"data:image" not in detail.content
    tasks = Task.objects.in_bulk(answer.json()["task_ids"])
    for cell in detail.json()["cells"]:
        assert cell["values"]["image_urls"] == tasks[cell["task"]["task_id"]].input["image_urls"]


# --- Checks that held --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_batches_and_single_tasks_at_once_never_take_a_key_and_a_team_past_their_budgets(catalog):
    """Held: 3 batches of 3 (about $0.3618 each) and 6 single tasks ($0.1206 each) sent at once on
    two team keys, with the team's budget fitting five tasks: the lock of every budget serializes
    them, and what was made fits the team's budget and each key's."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from playground.generations.services import committed_spend
    from playground.keys.services import issue_key
    from playground.teams.services import add_member, create_team

    from .helpers import at_once

    users = get_user_model().objects
    alice = users.create_user("alice", password="alice-password-1")
    bob = users.create_user("bob", password="bob-password-1")
    team = create_team("studio", alice, budget=Decimal("0.6030"))  # five tasks
    add_member(team, bob)
    secrets = [
        issue_key(alice, team=team, budget=Decimal("0.3618")).secret,
        issue_key(bob, team=team).secret,
    ]
    counter = iter(range(100))
    statuses = []

    def send():
        index = next(counter)
        secret = secrets[index % 2]
        if index % 3 == 0:
            path = BATCHES
            body = {
                "model": SEED,
                "input": shared(prompt=f"b{index}"),
                "vary": {"size": ["1:1", "16:9", "9:16"]},
            }
        else:
            path, body = "/api/v1/tasks", {"model": SEED, "input": seed_input(prompt=f"t{index}")}
        answer = Client().post(
            path, body, content_type="application/json", headers={"Authorization": f"Bearer {secret}"}
        )
        statuses.append(answer.status_code)

    at_once(send, 9)
    assert set(statuses) <= {201, 402}, statuses
    assert committed_spend(Task.objects.filter(team=team)) <= Decimal("0.6030")
    assert committed_spend(Task.objects.filter(api_key__user=alice)) <= Decimal("0.3618")


def test_nulls_nested_objects_and_odd_shapes_are_4xx_naming_the_field(api, queue_only):
    """Held: each odd batch is a 4xx naming its field, never a 500, and makes nothing."""
    cases = [
        ({"model": SEED, "input": shared(), "vary": {"size": [None, "1:1"]}}, 422, "vary.size[0]"),
        ({"model": SEED, "input": shared(), "vary": {"size": [{"a": [1]}]}}, 422, "vary.size[0]"),
        ({"model": SEED, "input": shared(), "vary": {"n": [0, 1]}}, 422, "vary.n[0]"),
        ({"model": SEED, "input": shared(), "vary": {"n": [1.5]}}, 422, "vary.n[0]"),
        ({"model": SEED, "input": shared(), "vary": {"model": [SEED]}}, 422, "vary.model"),
        ({"model": SEED, "input": shared(), "vary": {"nope": ["x"]}}, 422, "vary.nope"),
        ({"model": SEED, "input": shared(), "vary": {"prompt": ["x" * 20_000]}}, 422, "vary.prompt[0]"),
        ({"model": SEED, "input": shared(), "vary": None}, 422, "vary"),
        ({"model": SEED, "input": None}, 422, "input"),
        ({"models": None, "input": shared()}, 422, "models"),
        ({"models": [None], "input": shared()}, 422, "models[0]"),
        ({"models": [[SEED]], "input": shared()}, 422, "models[0]"),
        ({"model": [SEED], "input": shared()}, 422, "model"),
        ({"models": [SEED] * 100, "input": shared()}, 422, "vary"),
        ({"models": [SEED, SEED], "input": shared()}, 422, "models[1]"),
        ({"model": SEED, "input": shared(), "vary": {"size": ["1:1", "1:1"]}}, 422, "vary.size[1]"),
        ({"model": SEED, "input": shared(), "vary": {"size": list(map(str, range(1000)))}}, 422, "vary"),
    ]
    for body, status, field in cases:
        answer = api.post(BATCHES, body)
        assert (answer.status_code, answer.json()["error"].get("field")) == (status, field), (
            body,
            answer.content[:300],
        )
    for raw in (b"not json", b"[1]", b'{"model": "x"', b"\xff\xfe"):
        assert api.post(BATCHES, raw=raw).status_code == 400, raw
    assert not Task.objects.exists() and not Batch.objects.exists()


def test_a_duplicated_json_field_is_the_last_one_as_for_a_task(api, queue_only):
    """Held: a field given twice in the body, in input or in vary, is its last value."""
    raw = (
        '{"model": "nope", "model": "' + SEED + '", "input": {"prompt": "x", "n": 1, "resolution": "1K",'
        ' "prompt": "y"}, "vary": {"size": ["7:7"], "size": ["1:1", "16:9"]}}'
    )
    answer = api.post(BATCHES, raw=raw)
    assert answer.status_code == 201, answer.content[:300]
    assert sorted(t.input["size"] for t in Task.objects.all()) == ["16:9", "1:1"]
    assert {t.input["prompt"] for t in Task.objects.all()} == {"y"}


def test_idempotency_keys_are_per_workspace_and_per_owner_for_batches(
    client, user, other_user, catalog, queue_only, django_capture_on_commit_callbacks
):
    """Held: a batch key spent in the personal workspace is 409 with the team's key (never that
    batch); another member using the same key string makes their own batch; a key of 256
    characters or with a control character is 400."""
    from playground.keys.services import issue_key
    from playground.teams.services import add_member, create_team

    from .helpers import Api

    team = create_team("studio", user)
    add_member(team, other_user)
    mine = Api(client, issue_key(user).secret, django_capture_on_commit_callbacks)
    team_key = Api(client, issue_key(user, team=team).secret, django_capture_on_commit_callbacks)
    bobs = Api(client, issue_key(other_user, team=team).secret, django_capture_on_commit_callbacks)
    body = {"model": SEED, "input": shared(), "vary": {"size": ["1:1", "16:9"]}}
    first = mine.post(BATCHES, body, headers={"Idempotency-Key": "k"})
    assert first.status_code == 201
    assert team_key.post(BATCHES, body, headers={"Idempotency-Key": "k"}).status_code == 409
    theirs = bobs.post(BATCHES, body, headers={"Idempotency-Key": "k"})
    assert theirs.status_code == 201 and theirs.json()["batch_id"] != first.json()["batch_id"]
    assert team_key.get(f"{BATCHES}/{first.json()['batch_id']}").status_code == 404
    assert mine.get(f"{BATCHES}/{theirs.json()['batch_id']}").status_code == 404
    assert mine.post(BATCHES, body, headers={"Idempotency-Key": "x" * 256}).status_code == 400
    assert mine.post(BATCHES, body, headers={"Idempotency-Key": "a\x01b"}).status_code == 400
    assert mine.post(BATCHES, body, headers={"Idempotency-Key": "x" * 255}).status_code == 201


def test_a_removed_members_team_key_neither_makes_nor_reads_a_batch(
    client, user, other_user, catalog, queue_only, django_capture_on_commit_callbacks
):
    """Held: removing a member stops their team key (401) for POST and GET of batches."""
    from playground.keys.services import issue_key
    from playground.teams.services import add_member, create_team, remove_member

    from .helpers import Api

    team = create_team("studio", user)
    add_member(team, other_user)
    bobs = Api(client, issue_key(other_user, team=team).secret, django_capture_on_commit_callbacks)
    body = {"model": SEED, "input": shared(), "vary": {"size": ["1:1"]}}
    made = bobs.post(BATCHES, body)
    assert made.status_code == 201
    remove_member(team, other_user)
    from django.core.cache import cache

    cache.clear()
    import time as _time

    _time.sleep(1.1)  # the key cache (PLAYGROUND_KEY_CACHE_SECONDS)
    assert bobs.post(BATCHES, body).status_code == 401
    assert bobs.get(f"{BATCHES}/{made.json()['batch_id']}").status_code == 401
