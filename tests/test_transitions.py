import pytest

from playground.generations.lifecycle import transition
from playground.generations.models import Status, Task

ALL = list(Status.values)

# The lifecycle, written out: a wrong TRANSITIONS table must disagree with it. processing -> queued
# is the reaper re-queuing a task whose worker died; the three ends lead nowhere.
ALLOWED = {
    "queued": {"processing", "cancelled", "failed"},
    "processing": {"succeeded", "failed", "cancelled", "queued"},
    "succeeded": set(),
    "failed": set(),
    "cancelled": set(),
}


@pytest.fixture
def task(api, queue_only):
    return Task.objects.get(pk=api.submit().json()["task_id"])


@pytest.mark.parametrize(
    ("source", "target"), [(s, t) for s in ALL for t in ALL], ids=[f"{s}->{t}" for s in ALL for t in ALL]
)
def test_it_moves_a_task_only_along_the_lifecycle(task, source, target):
    Task.objects.filter(pk=task.pk).update(status=source)
    moved = transition(task.pk, target, message="test")
    task.refresh_from_db()
    assert moved == (target in ALLOWED[source]), f"{source} -> {target}"
    assert task.status == (target if moved else source)
    assert task.events.filter(status=target, message="test").exists() == moved


@pytest.mark.parametrize("end", ["succeeded", "failed", "cancelled"])
def test_it_never_moves_a_task_out_of_an_end_state(task, end):
    Task.objects.filter(pk=task.pk).update(status=end)
    events = task.events.count()
    for target in ALL:
        assert not transition(task.pk, target, message="after the end"), f"{end} -> {target}"
    task.refresh_from_db()
    assert task.status == end
    assert task.events.count() == events


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
