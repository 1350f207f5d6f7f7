import pytest

from playground.generations.models import Task
from playground.keys.services import issue_key

from .helpers import SEED, Api, at_once, seed_input


def test_it_replays_the_original_task_for_the_same_key_and_payload(api):
    first = api.submit(headers={"Idempotency-Key": "order-1"})
    again = api.submit(headers={"Idempotency-Key": "order-1"})
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json()["task_id"] == first.json()["task_id"]
    assert again.json()["status"] == "succeeded"  # the task's current state, not the stale one
    assert Task.objects.count() == 1


def test_it_answers_409_for_the_same_key_with_a_different_payload(api):
    api.submit(headers={"Idempotency-Key": "order-2"})
    response = api.submit(prompt="something else", headers={"Idempotency-Key": "order-2"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert Task.objects.count() == 1


def test_a_refused_request_does_not_consume_the_key(api):
    refused = api.submit(n=9, headers={"Idempotency-Key": "order-3"})
    assert refused.status_code == 422
    accepted = api.submit(headers={"Idempotency-Key": "order-3"})
    assert accepted.status_code == 201


def test_a_request_with_a_bad_api_key_does_not_consume_the_key(
    api, client, django_capture_on_commit_callbacks
):
    stranger = Api(client, "pg_live_" + "x" * 38, django_capture_on_commit_callbacks)
    assert stranger.submit(headers={"Idempotency-Key": "order-4"}).status_code == 401
    assert api.submit(headers={"Idempotency-Key": "order-4"}).status_code == 201


def test_keys_are_scoped_per_owner(api, other_api):
    mine = api.submit(headers={"Idempotency-Key": "shared-name"})
    theirs = other_api.submit(prompt="theirs", headers={"Idempotency-Key": "shared-name"})
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["task_id"] != theirs.json()["task_id"]


@pytest.mark.parametrize("value", ["", "k" * 256])
def test_it_refuses_an_empty_or_too_long_key(api, value):
    response = api.submit(headers={"Idempotency-Key": value})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "Idempotency-Key"


def test_it_accepts_a_key_of_255_characters(api):
    assert api.submit(headers={"Idempotency-Key": "k" * 255}).status_code == 201


@pytest.mark.django_db(transaction=True)
def test_sixteen_concurrent_identical_requests_create_exactly_one_task(catalog, user, queue_only):
    """Threads share nothing but the file-backed database; the unique constraint decides."""
    from django.test import Client

    secret = issue_key(user).secret
    statuses, task_ids = [], set()

    def submit():
        response = Client().post(
            "/api/v1/tasks",
            {"model": SEED, "input": seed_input()},
            content_type="application/json",
            headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "race"},
        )
        statuses.append(response.status_code)
        task_ids.add(response.json()["task_id"])

    at_once(submit, 16)
    assert sorted(statuses) == [200] * 15 + [201]
    assert len(task_ids) == 1
    assert Task.objects.count() == 1
