"""POST /api/v1/batches and GET /api/v1/batches/{id}: a task per cell of models x varied values, all
or none, within every budget; its tasks are ordinary tasks that know their batch. Every answer is
checked against the OpenAPI document (`Api`)."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from playground.generations.models import Batch, Task
from playground.keys.services import issue_key
from playground.teams.services import add_member, create_team, set_member_budget

from .helpers import SEED, Api, at_once, money, seed_input

BATCHES = "/api/v1/batches"
GPT = "gpt-image-2"
VIDEO = "minimax-hailuo-02"


def shared(**overrides):
    """The seed input without its size (the field most batches vary)."""
    data = {key: value for key, value in seed_input().items() if key != "size"}
    return {**data, **overrides}


def tasks_of(answer) -> list[Task]:
    by_id = Task.objects.select_related("model").in_bulk(answer.json()["task_ids"])
    return [by_id[task_id] for task_id in answer.json()["task_ids"]]


# --- The grid ----------------------------------------------------------------------------------------


def test_it_makes_a_task_per_value_of_one_field(api, queue_only):
    answer = api.post(BATCHES, {"model": SEED, "input": shared(), "vary": {"size": ["1:1", "16:9", "9:16"]}})
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert answer["Location"] == f"/api/v1/batches/{body['batch_id']}"
    assert body["axes"] == [
        {"field": "model", "values": [SEED]},
        {"field": "size", "values": ["1:1", "16:9", "9:16"]},
    ]
    assert body["left_out"] == {}
    tasks = tasks_of(answer)
    assert [task.input for task in tasks] == [seed_input(size=size) for size in ("1:1", "16:9", "9:16")]
    assert {task.batch_id for task in tasks} == {body["batch_id"]}
    assert {task.status for task in tasks} == {"queued"}
    assert money(body["cost_estimate"]) == 3 * money("0.1206") == sum(task.cost_estimate for task in tasks)


def test_it_makes_a_task_per_pair_of_values_of_two_fields_row_by_row(api, queue_only):
    vary = {"size": ["1:1", "16:9"], "n": [1, 2]}
    answer = api.post(
        BATCHES, {"model": SEED, "input": {"prompt": "a fox", "resolution": "1K"}, "vary": vary}
    )
    assert answer.status_code == 201, answer.content
    tasks = tasks_of(answer)
    assert [(task.input["size"], task.input["n"]) for task in tasks] == [
        ("1:1", 1),
        ("1:1", 2),
        ("16:9", 1),
        ("16:9", 2),
    ]
    assert 2 * tasks[0].cost_estimate == tasks[1].cost_estimate  # each cell priced on its own
    assert money(answer.json()["cost_estimate"]) == sum(task.cost_estimate for task in tasks)
    detail = api.get(f"{BATCHES}/{answer.json()['batch_id']}").json()
    assert [(cell["model"], cell["values"], cell["task"]["task_id"]) for cell in detail["cells"]] == [
        (SEED, {"size": task.input["size"], "n": task.input["n"]}, task.pk) for task in tasks
    ]
    assert detail["counts"]["queued"] == 4


def test_it_makes_a_task_per_model_and_value_over_two_models(api, queue_only):
    body = {"models": [SEED, GPT], "input": {"prompt": "a fox", "n": 1}, "vary": {"size": ["1:1", "16:9"]}}
    answer = api.post(BATCHES, body)
    assert answer.status_code == 201, answer.content
    assert answer.json()["axes"][0] == {"field": "model", "values": [SEED, GPT]}
    assert answer.json()["left_out"] == {}
    tasks = tasks_of(answer)
    assert [(task.model.slug, task.input["size"]) for task in tasks] == [
        (SEED, "1:1"),
        (SEED, "16:9"),
        (GPT, "1:1"),
        (GPT, "16:9"),
    ]


def test_each_model_gets_the_fields_it_has_and_the_batch_says_which_were_left_out(api, queue_only):
    body = {
        "models": [SEED, VIDEO],
        "input": {"prompt": "a fox", "n": 1, "prompt_optimizer": True},
        "vary": {"prompt": ["a fox", "an owl"]},
    }
    answer = api.post(BATCHES, body)
    assert answer.status_code == 201, answer.content
    # `n: 1` is the first model's default: the video model starts from its own, nothing left out.
    assert answer.json()["left_out"] == {SEED: ["prompt_optimizer"]}
    assert [task.input for task in tasks_of(answer)] == [
        {"prompt": "a fox", "n": 1},
        {"prompt": "an owl", "n": 1},
        {"prompt": "a fox", "prompt_optimizer": True},
        {"prompt": "an owl", "prompt_optimizer": True},
    ]
    detail = api.get(f"{BATCHES}/{answer.json()['batch_id']}").json()
    assert detail["left_out"] == {SEED: ["prompt_optimizer"]}


def test_a_field_no_chosen_model_has_is_refused_as_for_a_task(api, queue_only):
    answer = api.post(BATCHES, {"models": [SEED, GPT], "input": {"prompt": "x", "colour": "red"}})
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "input.colour"
    assert Task.objects.count() == 0


def test_the_batchs_tasks_run_and_its_cells_show_their_outputs(api):
    answer = api.post(BATCHES, {"model": SEED, "input": shared(), "vary": {"size": ["1:1", "16:9"]}})
    detail = api.get(f"{BATCHES}/{answer.json()['batch_id']}").json()  # the immediate backend ran them
    assert detail["counts"]["succeeded"] == 2
    for cell in detail["cells"]:
        assert cell["task"]["status"] == "succeeded"
        assert cell["task"]["batch_id"] == answer.json()["batch_id"]
        assert cell["task"]["output"]["images"][0]["url"].startswith("http://testserver/files/")
    widths = [cell["task"]["output"]["images"][0]["width"] for cell in detail["cells"]]
    heights = [cell["task"]["output"]["images"][0]["height"] for cell in detail["cells"]]
    assert widths[0] == heights[0] and widths[1] > heights[1]  # 1:1, then 16:9


def test_each_task_of_a_batch_is_listed_with_its_batch_id_and_a_lone_task_with_null(api, queue_only):
    lone = api.submit().json()["task_id"]
    batch = api.post(BATCHES, {"model": SEED, "input": shared(), "vary": {"size": ["1:1", "16:9"]}}).json()
    listed = {task["task_id"]: task["batch_id"] for task in api.get("/api/v1/tasks").json()["data"]}
    assert listed == {lone: None, **dict.fromkeys(batch["task_ids"], batch["batch_id"])}
    assert api.get(f"/api/v1/tasks/{batch['task_ids'][0]}").json()["batch_id"] == batch["batch_id"]


# --- All or none -------------------------------------------------------------------------------------


def test_one_bad_cell_refuses_the_whole_batch_naming_the_cell(api, queue_only):
    answer = api.post(BATCHES, {"model": SEED, "input": shared(), "vary": {"size": ["1:1", "16:9", "7:7"]}})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["field"] == "vary.size[2]"
    assert error["errors"][0]["code"] == "invalid_choice"
    assert Task.objects.count() == 0 and Batch.objects.count() == 0


def test_a_value_one_of_two_models_refuses_names_the_cell_and_the_model(api, queue_only):
    body = {"models": [SEED, GPT], "input": {"prompt": "a fox"}, "vary": {"size": ["1:1", "4:5"]}}
    answer = api.post(BATCHES, body)  # gemini has 4:5, gpt-image-2 has not
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "vary.size[1]"
    assert answer.json()["error"]["message"].startswith(f"{GPT}: Must be one of")
    assert Task.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"models": [SEED, "nope"], "input": {"prompt": "x"}}, "models[1]"),
        ({"model": "nope", "input": {"prompt": "x"}}, "model"),
        ({"input": {"prompt": "x"}}, "model"),
        ({"model": SEED, "models": [SEED], "input": {"prompt": "x"}}, "models"),
        ({"models": [SEED, SEED], "input": {"prompt": "x"}}, "models[1]"),
        ({"models": [], "input": {"prompt": "x"}}, "models"),
        ({"model": SEED, "input": "x"}, "input"),
        ({"model": SEED, "input": {"prompt": "x"}, "vary": ["size"]}, "vary"),
        ({"model": SEED, "input": {}, "vary": {"size": ["1:1"], "n": [1], "prompt": ["a"]}}, "vary"),
        ({"model": SEED, "input": {"prompt": "x"}, "vary": {"size": []}}, "vary.size"),
        ({"model": SEED, "input": {"prompt": "x"}, "vary": {"size": "1:1"}}, "vary.size"),
        ({"model": SEED, "input": {"prompt": "x"}, "vary": {"size": ["1:1", "1:1"]}}, "vary.size[1]"),
        (
            {"models": [SEED, GPT], "input": {"prompt": "x"}, "vary": {"mask_url": ["a", "b"]}},
            "vary.mask_url",
        ),
        ({"model": SEED, "input": {}, "vary": {"size": ["1:1", "16:9"]}}, "input.prompt"),
    ],
    ids=[
        "unknown model in a list",
        "unknown model",
        "no model",
        "model and models",
        "a model twice",
        "no models",
        "input not an object",
        "vary not an object",
        "three varied fields",
        "no values",
        "values not a list",
        "a value twice",
        "a field one model lacks",
        "a field every cell lacks",
    ],
)
def test_a_malformed_batch_is_refused_naming_the_field_and_makes_nothing(api, queue_only, body, field):
    answer = api.post(BATCHES, body)
    assert answer.status_code == 422, answer.content
    assert answer.json()["error"]["field"] == field
    assert Task.objects.count() == 0 and Batch.objects.count() == 0


def test_more_cells_than_the_cap_are_refused_naming_the_count(api, queue_only, settings):
    sizes = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9"]
    answer = api.post(BATCHES, {"models": [SEED, GPT], "input": {"prompt": "x"}, "vary": {"size": sizes}})
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "batch_too_large"
    assert "18 tasks; at most 16" in answer.json()["error"]["message"]
    settings.PLAYGROUND_MAX_BATCH_TASKS = 2
    answer = api.post(BATCHES, {"model": SEED, "input": shared(), "vary": {"size": ["1:1", "16:9", "9:16"]}})
    assert answer.status_code == 422 and "3 tasks; at most 2" in answer.json()["error"]["message"]
    assert Task.objects.count() == 0
    assert (
        api.post(BATCHES, {"model": SEED, "input": shared(), "vary": {"size": ["1:1", "16:9"]}}).status_code
        == 201
    )


def test_a_batch_over_the_keys_budget_is_refused_naming_it_and_makes_no_task(
    client, user, catalog, queue_only, django_capture_on_commit_callbacks
):
    capped = Api(client, issue_key(user, budget=Decimal("0.25")).secret, django_capture_on_commit_callbacks)
    answer = capped.post(
        BATCHES, {"model": SEED, "input": shared(), "vary": {"size": ["1:1", "16:9", "9:16"]}}
    )
    assert answer.status_code == 402
    error = answer.json()["error"]
    assert error["code"] == "budget_exceeded"
    assert "batch of 3 tasks (about $0.3618)" in error["message"]
    assert "the key's budget: $0.25 of $0.25 is left" in error["message"]
    assert Task.objects.count() == 0 and Batch.objects.count() == 0
    answer = capped.post(BATCHES, {"model": SEED, "input": shared(), "vary": {"size": ["1:1", "16:9"]}})
    assert answer.status_code == 201  # $0.2412: fits
    assert capped.submit().status_code == 402  # and the batch counts against the key


def test_a_team_keys_batch_is_the_teams_and_fits_the_team_and_member_budgets(
    client, user, other_user, catalog, queue_only, django_capture_on_commit_callbacks
):
    team = create_team("studio", user, budget=Decimal("1"))
    set_member_budget(add_member(team, other_user), Decimal("0.3"), "")
    bob = Api(client, issue_key(other_user, team=team).secret, django_capture_on_commit_callbacks)
    alice = Api(client, issue_key(user, team=team).secret, django_capture_on_commit_callbacks)
    alice_own = Api(client, issue_key(user).secret, django_capture_on_commit_callbacks)

    three = {"model": SEED, "input": shared(), "vary": {"size": ["1:1", "16:9", "9:16"]}}
    refused = bob.post(BATCHES, three)
    assert refused.status_code == 402
    assert "your budget in the team" in refused.json()["error"]["message"]
    assert Task.objects.count() == 0

    made = bob.post(BATCHES, {**three, "vary": {"size": ["1:1", "16:9"]}})
    assert made.status_code == 201
    batch = Batch.objects.get(pk=made.json()["batch_id"])
    assert batch.team == team and batch.owner == other_user
    assert {task.team_id for task in tasks_of(made)} == {team.pk}
    path = f"{BATCHES}/{batch.pk}"
    assert alice.get(path).status_code == 200  # a teammate's key sees it
    assert [cell["task"]["created_by"] for cell in alice.get(path).json()["cells"]] == ["bob", "bob"]
    assert alice_own.get(path).status_code == 404  # a personal key does not

    many = {
        "model": SEED,
        "input": shared(),
        "vary": {"size": ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4"]},
    }
    refused = alice.post(BATCHES, many)  # $0.8442 on top of the team's $0.2412
    assert refused.status_code == 402
    assert "the team's budget" in refused.json()["error"]["message"]
    assert Task.objects.count() == 2


# --- Who sees it ------------------------------------------------------------------------------------


def test_another_owners_batch_is_404_as_a_missing_one(api, other_api, queue_only):
    batch_id = api.post(BATCHES, {"model": SEED, "input": shared(), "vary": {"size": ["1:1"]}}).json()[
        "batch_id"
    ]
    assert api.get(f"{BATCHES}/{batch_id}").status_code == 200
    theirs, missing = other_api.get(f"{BATCHES}/{batch_id}"), other_api.get(f"{BATCHES}/batch_nope")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "batch_not_found"


def test_a_batch_needs_a_key(client, catalog):
    assert client.post(BATCHES, {}, content_type="application/json").status_code == 401
    assert client.get(f"{BATCHES}/batch_x").status_code == 401


# --- Idempotency --------------------------------------------------------------------------------------


def test_the_same_idempotency_key_and_body_replay_the_batch_and_another_body_is_409(api, queue_only):
    body = {"model": SEED, "input": shared(), "vary": {"size": ["1:1", "16:9"]}}
    first = api.post(BATCHES, body, headers={"Idempotency-Key": "b-1"})
    again = api.post(BATCHES, body, headers={"Idempotency-Key": "b-1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert Task.objects.count() == 2 and Batch.objects.count() == 1
    other = api.post(BATCHES, {**body, "vary": {"size": ["1:1", "9:16"]}}, headers={"Idempotency-Key": "b-1"})
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert api.post(BATCHES, body, headers={"Idempotency-Key": ""}).status_code == 400
    assert Task.objects.count() == 2


def test_a_refused_batch_does_not_spend_its_key(api, queue_only):
    body = {"model": SEED, "input": shared(), "vary": {"size": ["1:1", "7:7"]}}
    assert api.post(BATCHES, body, headers={"Idempotency-Key": "b-2"}).status_code == 422
    body["vary"]["size"][1] = "16:9"
    assert api.post(BATCHES, body, headers={"Idempotency-Key": "b-2"}).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_identical_batches_sent_at_once_with_one_idempotency_key_make_one_batch(catalog, user, queue_only):
    secret = issue_key(user).secret
    body = {"model": SEED, "input": shared(), "vary": {"size": ["1:1", "16:9", "9:16"]}}
    answers = []

    def send():
        answers.append(
            Client().post(
                BATCHES,
                body,
                content_type="application/json",
                headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "raced"},
            )
        )

    at_once(send, 4)
    assert sorted(answer.status_code for answer in answers) == [200, 200, 200, 201]
    assert len({answer.json()["batch_id"] for answer in answers}) == 1
    assert Batch.objects.count() == 1 and Task.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_identical_batches_at_once_at_a_budgets_edge_all_get_the_one_batch(catalog, queue_only):
    """With a budget the replay is looked for again under its lock: never 402 for a twin."""
    owner = get_user_model().objects.create_user("owner", password="owner-password-1")
    secret = issue_key(owner, budget=Decimal("0.3618")).secret  # exactly the one batch
    body = {"model": SEED, "input": shared(), "vary": {"size": ["1:1", "16:9", "9:16"]}}
    statuses = []

    def send():
        statuses.append(
            Client()
            .post(
                BATCHES,
                body,
                content_type="application/json",
                headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "edge"},
            )
            .status_code
        )

    at_once(send, 4)
    assert sorted(statuses) == [200, 200, 200, 201]
    assert Task.objects.count() == 3


def test_a_data_uri_every_cell_shares_is_stored_once_and_referenced_by_each_task(api, queue_only):
    from playground.generations.models import InputFile

    from .helpers import data_uri, solid_png

    image = data_uri(solid_png(size=(300, 300)))
    body = {"model": SEED, "input": shared(image_urls=[image]), "vary": {"size": ["1:1", "16:9"]}}
    answer = api.post(BATCHES, body, headers={"Idempotency-Key": "with-image"})
    assert answer.status_code == 201, answer.content
    [stored] = InputFile.objects.all()
    urls = {task.input["image_urls"][0] for task in tasks_of(answer)}
    assert len(urls) == 1 and stored.pk in urls.pop()
    assert api.post(BATCHES, body, headers={"Idempotency-Key": "with-image"}).status_code == 200  # same bytes
