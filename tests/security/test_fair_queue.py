"""A fair queue: one account's long queue never starves everyone else's.

At most PLAYGROUND_MAX_RUNNING_PER_OWNER (default 2) tasks of one account run at once, and a free
worker starts the oldest task of the account served least recently; a demo pass counts as its
owner. The task page says honestly where a queued task stands. Real `db_worker` processes on the
file-backed test database where the queue itself is what is tested (the local engine slowed down by
PLAYGROUND_LOCAL_ENGINE_DELAY, seconds per image).
"""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from playground.access.passes import create_pass
from playground.generations.fairness import claim_next_task, ordinal, place_in_line, queue_positions
from playground.generations.jobs import jobs_for, run_task, top_up_queue
from playground.generations.lifecycle import transition
from playground.generations.models import TERMINAL, Status, Task
from playground.generations.reaper import reap_expired_tasks
from playground.generations.services import cancel_task, submit_task

from ..conftest import WORKER
from ..helpers import SEED, at_once, seed_input, wait_for


def queue(owner, count: int, **kwargs) -> list[str]:
    """`count` tasks of `owner`, queued one after the other (their jobs enqueued on commit)."""
    ids = []
    for number in range(count):
        submission = submit_task(
            owner, SEED, seed_input(prompt=f"{owner} {number}"), request_id=f"req_{number}", **kwargs
        )
        ids.append(submission.task.pk)
    return ids


def started_order(task_ids: list[str]) -> list[str]:
    tasks = Task.objects.filter(pk__in=task_ids, started_at__isnull=False).order_by("started_at")
    return list(tasks.values_list("pk", flat=True))


def most_running_at_once(task_ids: list[str]) -> int:
    """The most of these tasks that were processing at one moment, from their start and end times."""
    moments = []
    for started, finished in Task.objects.filter(pk__in=task_ids).values_list("started_at", "finished_at"):
        moments += [(started, 1), (finished, -1)]
    running = most = 0
    for _, change in sorted(moments, key=lambda moment: (moment[0], moment[1])):  # an end before a start
        running += change
        most = max(most, running)
    return most


def unfinished(task_ids: list[str]) -> bool:
    return Task.objects.filter(pk__in=task_ids).exclude(status__in=TERMINAL).exists()


@pytest.fixture
def bob(db):
    return get_user_model().objects.create_user("bob", password="bob-password-1")


@pytest.fixture
def database_queue(settings, django_capture_on_commit_callbacks):
    """`enqueue(owner, count)`: tasks queued with their jobs on django-tasks-db, which nothing runs
    but the test."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

    def enqueue(owner, count):
        with django_capture_on_commit_callbacks(execute=True):
            return queue(owner, count)

    return enqueue


def run_one_job() -> None:
    """What a `db_worker` does with the next job in the queue, in this process."""
    job = DBTaskResult.objects.ready().first()
    job.claim("test-worker")
    worker = Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=1,
        worker_id="test-worker",
        excluded_queue_names=[],
    )
    worker.run_task(job)


# --- The Done-when: real workers ------------------------------------------------------------------


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_with_one_worker_a_second_users_task_starts_right_after_the_first_users_running_task(
    user, bob, catalog, spawn, django_capture_on_commit_callbacks
):
    spawn(*WORKER, PLAYGROUND_LOCAL_ENGINE_DELAY=0.3)
    with django_capture_on_commit_callbacks(execute=True):
        alices = queue(user, 10)
    assert wait_for(lambda: Task.objects.filter(pk=alices[0], status=Status.PROCESSING).exists())
    with django_capture_on_commit_callbacks(execute=True):
        [bobs] = queue(bob, 1)

    assert wait_for(lambda: Task.objects.get(pk=bobs).is_terminal, timeout=60), "bob's task never ran"
    assert Task.objects.get(pk=bobs).status == Status.SUCCEEDED
    assert wait_for(lambda: len(started_order(alices)) >= 2)
    # Alice's first task was running when bob queued his; his started next, before her second.
    assert started_order([*alices, bobs])[:3] == [alices[0], bobs, alices[1]]
    # Every job still names the task it ran (the queue's records stay true).
    assert jobs_for(bobs).get().return_value == "succeeded"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_three_workers_never_run_more_than_two_tasks_of_one_owner_at_once(
    user, bob, catalog, spawn, django_capture_on_commit_callbacks
):
    for _ in range(3):
        spawn(*WORKER, PLAYGROUND_LOCAL_ENGINE_DELAY=0.4)
    with django_capture_on_commit_callbacks(execute=True):
        alices = queue(user, 6)
    assert wait_for(lambda: Task.objects.filter(owner=user, status=Status.PROCESSING).count() == 2)
    with django_capture_on_commit_callbacks(execute=True):
        [bobs] = queue(bob, 1)

    # No reaper runs: every task ends because each end queues a job for whoever may start next.
    assert wait_for(lambda: not unfinished([*alices, bobs]), timeout=90), "a task was stranded"
    tasks = Task.objects.filter(pk__in=[*alices, bobs])
    assert {(task.status, task.attempts) for task in tasks} == {(Status.SUCCEEDED, 1)}
    assert most_running_at_once(alices) == 2
    # The third worker, which alice could not use, ran bob's task before her queue was done.
    assert Task.objects.get(pk=bobs).started_at < max(task.started_at for task in tasks if task.owner == user)


# --- Claiming: exactly once, under the cap, with several workers at once ----------------------


@pytest.mark.django_db(transaction=True)
def test_workers_claiming_at_once_take_each_task_once_and_keep_every_owner_under_the_cap(
    user, bob, catalog, queue_only
):
    alices, bobs = queue(user, 5), queue(bob, 3)
    claimed = []
    at_once(lambda: claimed.append(claim_next_task(message="Started.", attempts=1)), 6)

    taken = [task_id for task_id in claimed if task_id is not None]
    assert len(claimed) == 6 and len(taken) == len(set(taken)) == 4
    assert sorted(taken) == sorted(alices[:2] + bobs[:2])  # each owner's oldest two
    running = Task.objects.filter(status=Status.PROCESSING)
    assert sorted(running.values_list("pk", flat=True)) == sorted(taken)
    assert all(task.events.filter(status=Status.PROCESSING).count() == 1 for task in running)


def test_the_account_served_least_recently_goes_first_then_its_oldest_task(user, bob, catalog, queue_only):
    alices = queue(user, 3)
    assert claim_next_task() == alices[0]  # only alice waits
    bobs = queue(bob, 2)
    assert claim_next_task() == bobs[0]  # bob has never been served: before alice's second
    transition(alices[0], Status.SUCCEEDED)
    assert claim_next_task() == alices[1]  # alice was served longer ago than bob
    assert claim_next_task() == bobs[1]
    assert claim_next_task() == alices[2]


def test_the_cap_is_a_setting_and_zero_lifts_it(user, catalog, queue_only, settings):
    alices = queue(user, 4)
    settings.PLAYGROUND_MAX_RUNNING_PER_OWNER = 1
    assert claim_next_task() == alices[0]
    assert claim_next_task() is None  # at the cap
    settings.PLAYGROUND_MAX_RUNNING_PER_OWNER = 0
    assert [claim_next_task() for _ in range(3)] == alices[1:]


def test_demo_pass_guests_count_as_the_pass_owner(user, bob, catalog, queue_only):
    demo = create_pass(user, "Team demo", [SEED], spend_cap=5, hours=2)
    owners = queue(user, 2)
    guests = queue(user, 1, demo_pass=demo, guest="guest-1", source="demo")
    assert [claim_next_task(), claim_next_task()] == owners
    bobs = queue(bob, 1)
    # The guest's task waits for a slot of the pass's owner: bob's starts, the guest's does not.
    assert claim_next_task() == bobs[0]
    assert claim_next_task() is None
    assert Task.objects.get(pk=guests[0]).status == Status.QUEUED


# --- Jobs are tickets: what runs when, and the queue's records ------------------------------------


def test_a_job_that_starts_another_task_hands_its_ticket_over(user, bob, catalog, database_queue):
    alices = database_queue(user, 3)
    bobs = database_queue(bob, 1)
    run_one_job()  # alice's first job: alice's first task
    run_one_job()  # alice's second job: bob's task, bob never having been served
    assert started_order([*alices, *bobs]) == [alices[0], bobs[0]]
    # The job that ran bob's task names it now; the job queued for bob's waits for alice's second.
    assert list(jobs_for(bobs[0]).values_list("status", "return_value")) == [
        (TaskResultStatus.SUCCESSFUL, "succeeded")
    ]
    assert list(jobs_for(alices[1]).values_list("status", flat=True)) == [TaskResultStatus.READY]
    run_one_job()
    run_one_job()
    for task_id in [*alices, *bobs]:
        assert list(jobs_for(task_id).values_list("status", "return_value")) == [
            (TaskResultStatus.SUCCESSFUL, "succeeded")
        ], task_id


def test_a_job_finding_every_account_at_its_cap_ends_and_the_next_end_queues_one_again(
    user, catalog, database_queue, settings
):
    settings.PLAYGROUND_MAX_RUNNING_PER_OWNER = 1
    first, second = database_queue(user, 2)
    assert claim_next_task() == first  # as another worker would
    run_one_job()
    run_one_job()
    assert {job.return_value for job in jobs_for(first)} | {job.return_value for job in jobs_for(second)} == {
        "skipped"
    }
    assert Task.objects.get(pk=second).status == Status.QUEUED  # waiting for a slot, with no job

    # Waiting for a slot is not being lost: the reaper leaves it alone, however long it waits.
    long_ago = timezone.now() - timedelta(seconds=settings.PLAYGROUND_QUEUED_TIMEOUT + 1)
    Task.objects.filter(pk=second).update(updated_at=long_ago)
    assert not reap_expired_tasks().reenqueued

    transition(first, Status.SUCCEEDED)  # the running task ends, and its run tops the queue up
    assert top_up_queue() == [second]
    assert top_up_queue() == []
    run_one_job()
    assert Task.objects.get(pk=second).status == Status.SUCCEEDED


def test_a_job_that_starts_a_task_waiting_without_a_job_leaves_its_own_task_a_new_one(
    user, bob, catalog, database_queue, settings
):
    settings.PLAYGROUND_MAX_RUNNING_PER_OWNER = 1
    first, second = database_queue(user, 2)
    assert claim_next_task() == first  # as another worker would
    run_one_job()
    run_one_job()  # alice is at her cap: both her jobs end, and her second task waits with none
    database_queue(bob, 1)
    run_one_job()  # bob is served after alice: he goes last in the round
    transition(first, Status.SUCCEEDED)  # alice's first ends (its run would top the queue up)
    [bobs_second] = database_queue(bob, 1)
    run_one_job()  # bob's second job: alice, served longest ago, goes first with her second task
    assert Task.objects.get(pk=second).status == Status.SUCCEEDED
    assert list(jobs_for(bobs_second).values_list("status", flat=True)) == [TaskResultStatus.READY]
    run_one_job()
    assert Task.objects.get(pk=bobs_second).status == Status.SUCCEEDED


def test_a_cancelled_queued_task_is_never_started(user, catalog, database_queue):
    first, second = database_queue(user, 2)
    cancel_task(Task.objects.get(pk=first))
    assert run_task.call(first) == "succeeded"  # its job starts the next task instead
    assert Task.objects.get(pk=second).status == Status.SUCCEEDED
    assert run_task.call(first) == "skipped"
    assert Task.objects.get(pk=first).status == Status.CANCELLED


# --- The task shows its place in line -------------------------------------------------------------


def panel(client, task_id: str, **headers) -> tuple[str, object]:
    response = client.get(reverse("task", args=[task_id]), headers={"HX-Request": "true", **headers})
    return response.content.decode(), response


def test_the_task_page_counts_the_tasks_ahead_in_the_fair_order(client, user, bob, catalog, queue_only):
    alices = queue(user, 3)
    bobs = queue(bob, 1)
    client.force_login(user)
    # Turns go round: alice's first, bob's, alice's second, then her third.
    assert "4th in line: 3 tasks ahead of yours." in panel(client, alices[2])[0]
    assert "1st in line: it starts as soon as a worker is free." in panel(client, alices[0])[0]
    client.force_login(bob)
    assert "2nd in line: 1 task ahead of yours." in panel(client, bobs[0])[0]


def test_the_task_page_says_when_it_waits_for_the_owners_running_tasks(client, user, catalog, queue_only):
    alices = queue(user, 3)
    client.force_login(user)
    html, response = panel(client, alices[2])
    assert "3rd in line: 2 tasks ahead of yours." in html
    claim_next_task(), claim_next_task()
    # Its row did not change, its place did: the poll gets the new panel, not 304 Not Modified.
    html, response = panel(client, alices[2], **{"If-None-Match": response["ETag"]})
    assert response.status_code == 200
    assert (
        "1st in line: it starts once one of the 2 tasks you have running finishes "
        "(the most that run at once)." in html
    )
    assert "data-place-in-line" not in panel(client, alices[0])[0]  # running: no place in line


def test_a_task_behind_its_owners_other_waiting_tasks_says_they_come_first(client, user, catalog, queue_only):
    """At the cap with more of one's own tasks waiting: the fifth is not "next" when one of the
    running ones ends (the walkthrough's fifth task said it was)."""
    alices = queue(user, 5)
    claim_next_task(), claim_next_task()
    client.force_login(user)
    html, _ = panel(client, alices[4])
    assert "3rd in line: 2 tasks ahead of yours; you have 2 tasks running, the most that run at once." in html


@pytest.mark.parametrize(
    ("number", "spelled"),
    [
        *((1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"), (13, "13th")),
        *((21, "21st"), (22, "22nd"), (101, "101st"), (111, "111th"), (112, "112th")),
    ],
)
def test_places_in_line_are_english_ordinals(number, spelled):
    assert ordinal(number) == spelled


def test_a_page_of_tasks_gets_the_same_places_as_each_task_alone(
    user, bob, catalog, queue_only, django_assert_num_queries
):
    alices = queue(user, 3)
    bobs = queue(bob, 2)
    claim_next_task()  # alice's first runs: no place in line any more
    tasks = list(Task.objects.filter(pk__in=alices + bobs))
    with django_assert_num_queries(2):  # the accounts in line, then each queued task's older ones
        positions = queue_positions(tasks)
    alone = {}
    for task in tasks:
        with django_assert_num_queries(1):
            place = place_in_line(task.pk, task.created_at)
        if place is not None:
            alone[task.pk] = place.position
    # Turns go round: bob's first (alice was served last), alice's second, bob's second, her third.
    assert positions == alone == {bobs[0]: 1, alices[1]: 2, bobs[1]: 3, alices[2]: 4}


def test_a_slot_freed_while_a_job_is_deciding_to_skip_still_gets_its_waiting_task_a_job(
    user, catalog, database_queue, settings
):
    """A job that found every account at its cap is still RUNNING for a moment after deciding so.
    If a running task ends in that moment, its top-up must not count that job as about to start
    the waiting task (it never will), or the task waits for the reaper (minutes)."""
    from playground.generations import jobs

    settings.PLAYGROUND_MAX_RUNNING_PER_OWNER = 1
    first, second = database_queue(user, 2)
    assert claim_next_task() == first  # as another worker would
    job = jobs_for(second).get()
    job.claim("test-worker")  # RUNNING, as a worker holds it while run_task runs
    jobs._current.job_id = job.pk
    assert run_task.call(second) == "skipped"  # alice is at her cap; the worker has not ended the job yet

    transition(first, Status.SUCCEEDED)  # her running task ends now: a slot frees
    assert top_up_queue() == [second]
