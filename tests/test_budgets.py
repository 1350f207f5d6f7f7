"""Spend limits of issued keys: 402 budget_exceeded before a task exists, and race-safe."""

from decimal import Decimal

import pytest
from django.test import Client

from playground.generations.models import Task
from playground.keys.services import issue_key

from .helpers import SEED, Api, at_once, seed_input, submits_at_once


@pytest.fixture
def budget_api(client, user, catalog, django_capture_on_commit_callbacks):
    issued = issue_key(user, name="capped", budget=Decimal("0.25"))
    return Api(client, issued.secret, django_capture_on_commit_callbacks)


def test_tasks_run_until_the_budget_would_be_exceeded_then_402(budget_api):
    assert budget_api.submit().status_code == 201
    assert budget_api.submit(prompt="two").status_code == 201
    refused = budget_api.submit(prompt="three")
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert error["code"] == "budget_exceeded"
    assert error["message"] == (
        "This task (about $0.1206) would go over the key's budget: $0.0088 of $0.25 is left."
    )
    assert Task.objects.count() == 2


def test_the_estimate_is_checked_before_the_task_is_created(budget_api):
    refused = budget_api.submit(n=3)  # 0.3618 > 0.25 on its own
    assert refused.status_code == 402
    assert not Task.objects.exists()


def test_failed_tasks_give_their_money_back(budget_api):
    first = budget_api.submit().json()["task_id"]
    Task.objects.filter(pk=first).update(status="failed", cost_actual=0)
    assert budget_api.submit(prompt="b").status_code == 201
    assert budget_api.submit(prompt="c").status_code == 201


def test_a_key_without_budget_has_no_limit(api, queue_only):
    for i in range(3):
        assert api.submit(n=4, resolution="4K", prompt=f"big {i}").status_code == 201


@pytest.mark.django_db(transaction=True)
def test_ten_concurrent_submits_against_a_budget_for_three_create_at_most_three(catalog, user, queue_only):
    secret = issue_key(user, budget=Decimal("0.3618")).secret  # exactly three 1K images
    statuses = submits_at_once([secret], 10)
    assert Task.objects.count() == statuses.count(201) <= 3
    assert statuses == [201] * 3 + [402] * 7


@pytest.mark.django_db(transaction=True)
def test_identical_submits_with_one_idempotency_key_at_the_budget_edge_all_get_the_one_task(
    catalog, user, queue_only
):
    """The budget covers exactly one task. Every repeat of the request (same Idempotency-Key, same
    body, sent at once from its own thread and connection) replays the task the first one made:
    the replay check runs under the lock of the budget check, so a repeat that waited for the lock
    never counts the original against itself (which would be a 402)."""
    secret = issue_key(user, budget=Decimal("0.1206")).secret  # one 1K image
    threads_count = 8
    answers = []

    def submit():
        response = Client().post(
            "/api/v1/tasks",
            {"model": SEED, "input": seed_input(prompt="edge")},
            content_type="application/json",
            headers={"Authorization": f"Bearer {secret}", "Idempotency-Key": "edge-1"},
        )
        answers.append((response.status_code, response.json().get("task_id")))

    at_once(submit, threads_count)
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] * (threads_count - 1) + [201], answers
    [task] = Task.objects.all()
    assert {task_id for _, task_id in answers} == {task.pk}
