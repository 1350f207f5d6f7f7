"""A cancel and a completion arriving together leave one consistent end state."""

import threading
from decimal import Decimal

import pytest
from django.db import connections

from playground.generations.models import TERMINAL, Status, Task
from playground.generations.services import TaskConflict, cancel_task, transition

ROUNDS = 30
COST = Decimal("0.1206")
OUTPUT = {"images": [{"file": "outputs/x/0.png", "content_type": "image/png", "bytes": 1}]}


def race(*actions):
    """Run each action in its own thread (own database connection), released together."""
    barrier = threading.Barrier(len(actions))
    results = [None] * len(actions)

    def run(index, action):
        try:
            barrier.wait()
            results[index] = action()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def cancelled(task):
    try:
        cancel_task(task)
    except TaskConflict:
        return False
    return True


@pytest.mark.django_db(transaction=True)
def test_a_cancel_racing_a_completion_ends_in_exactly_one_state(api, queue_only):
    outcomes = set()
    for _ in range(ROUNDS):
        task = Task.objects.get(pk=api.submit().json()["task_id"])
        assert transition(task.pk, Status.PROCESSING)
        completed, was_cancelled = race(
            lambda task=task: transition(task.pk, Status.SUCCEEDED, output=OUTPUT, cost_actual=COST),
            lambda task=task: cancelled(task),
        )
        assert completed != was_cancelled, "both or neither won"
        task.refresh_from_db()
        ends = list(task.events.filter(kind="status", status__in=TERMINAL).values_list("status", flat=True))
        assert ends == [task.status]
        if was_cancelled:
            assert (task.status, task.output, task.cost_actual) == ("cancelled", None, 0)
        else:
            assert (task.status, task.output, task.cost_actual) == ("succeeded", OUTPUT, COST)
        assert task.finished_at is not None and task.lease_expires_at is None
        outcomes.add(task.status)
    print(f"outcomes seen over {ROUNDS} rounds: {sorted(outcomes)}")
