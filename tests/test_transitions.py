import pytest

from playground.generations.models import Status, Task
from playground.generations.services import TRANSITIONS, transition

ALL = list(Status.values)


@pytest.fixture
def task(api, queue_only):
    return Task.objects.get(pk=api.submit().json()["task_id"])


@pytest.mark.parametrize("source", ALL)
@pytest.mark.parametrize("target", ALL)
def test_only_the_table_allowed_transitions_happen(task, source, target):
    Task.objects.filter(pk=task.pk).update(status=source)
    moved = transition(task.pk, target, message="test")
    task.refresh_from_db()
    assert moved == (target in TRANSITIONS[source])
    assert task.status == (target if moved else source)
    assert task.events.filter(status=target, message="test").exists() == moved


def test_terminal_states_have_no_way_out():
    for status in ("succeeded", "failed", "cancelled"):
        assert TRANSITIONS[status] == frozenset()


def test_a_completion_after_a_cancel_changes_nothing(task):
    assert transition(task.pk, Status.PROCESSING)
    assert transition(task.pk, Status.CANCELLED, cost_actual=0)
    assert not transition(task.pk, Status.SUCCEEDED, output={"images": []}, cost_actual=1)
    task.refresh_from_db()
    assert task.status == "cancelled"
    assert task.output is None
    assert task.cost_actual == 0


def test_terminal_transitions_stamp_the_finish_time(task):
    transition(task.pk, Status.PROCESSING)
    transition(task.pk, Status.FAILED, error={"code": "x", "message": "y"}, cost_actual=0)
    task.refresh_from_db()
    assert task.started_at and task.finished_at and task.finished_at >= task.started_at
