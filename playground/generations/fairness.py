"""The fair queue: which waiting task a free worker starts next, and where a task stands in line.

- An account (`fairness_account`) has at most PLAYGROUND_MAX_RUNNING_PER_OWNER tasks processing.
- Among the accounts with a task waiting and a slot free, the one served least recently goes first:
  the one whose last task started longest ago, and one never served before anyone. An account's long
  queue therefore takes turns with everyone else's instead of going first: a second person's single
  task starts right after the first person's running task, however many the first one queued.
- Within an account, its oldest task first.

Claims are made one at a time (a transaction-scoped advisory lock on PostgreSQL; SQLite's IMMEDIATE
transactions already hold its one write lock), so the cap holds across any number of workers and
hosts, and each task is claimed once.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Aggregate, Count, F, Min, OuterRef, Q, Subquery
from django.db.models.expressions import Expression
from django.db.models.functions import Coalesce

from .lifecycle import transition
from .models import Status, Task

# The key of the advisory lock that serializes claims on PostgreSQL (any constant; "fair").
CLAIM_LOCK = 0x66616972


def fairness_account() -> Expression:
    """The account whose share of the workers a task uses: its owner.

    A demo-pass guest's task is owned by the pass's owner, so all the guests of a pass share their
    owner's share. This is the one place to change once teams exist: a team that pools its members
    would answer with the task's workspace here.
    """
    return F("owner_id")


def running_cap() -> int | None:
    """How many tasks of one account may run at once; None: no limit (the setting is 0)."""
    cap = settings.PLAYGROUND_MAX_RUNNING_PER_OWNER
    return cap if cap > 0 else None


@dataclass(frozen=True)
class Account:
    """An account with tasks waiting, as the queue sees it."""

    id: int
    waiting: int  # tasks queued
    running: int  # tasks processing
    oldest_waiting: datetime
    last_started: datetime | None  # when its most recent task started; None: never

    @property
    def free_slots(self) -> int | None:
        """How many more of its tasks may start now (None: any number)."""
        cap = running_cap()
        return None if cap is None else max(cap - self.running, 0)

    @property
    def turn(self) -> tuple:
        """Sorts fairest first: never served, then served least recently, then waiting longest."""
        served = self.last_started is not None
        return (served, self.last_started or self.oldest_waiting, self.oldest_waiting, self.id)


def tasks_by_account():
    return Task.objects.annotate(account=fairness_account())


def _accounts_waiting(**counts: Aggregate) -> list[dict[str, Any]]:
    """Every account with a task waiting, in one statement: how many of its tasks wait and run,
    its oldest waiting task, its most recent start, and `counts` (more aggregates over its tasks
    waiting or running), in no particular order."""
    tasks = tasks_by_account()
    queued, processing = Q(status=Status.QUEUED), Q(status=Status.PROCESSING)
    last_started = (
        tasks.filter(account=OuterRef("account"), started_at__isnull=False)
        .order_by("-started_at")
        .values("started_at")[:1]
    )
    rows = (
        tasks.filter(queued | processing)
        .values("account")
        .annotate(
            waiting=Count("pk", filter=queued),
            running=Count("pk", filter=processing),
            oldest=Min("created_at", filter=queued),
            last_started=Subquery(last_started),
            **counts,
        )
        .filter(waiting__gt=0)
        .order_by()
    )
    return list(rows)


def _fairest_first(rows: list[dict[str, Any]]) -> list[Account]:
    accounts = [
        Account(row["account"], row["waiting"], row["running"], row["oldest"], row["last_started"])
        for row in rows
    ]
    return sorted(accounts, key=lambda account: account.turn)


def accounts_in_line() -> list[Account]:
    """Every account with a task waiting, fairest first (one statement)."""
    return _fairest_first(_accounts_waiting())


def oldest_first(tasks):
    return tasks.order_by("created_at", "pk")


def waiting_tasks_of(account: Account, limit: int | None = None) -> list[str]:
    tasks = oldest_first(tasks_by_account().filter(status=Status.QUEUED, account=account.id))
    ids = tasks.values_list("pk", flat=True)
    return list(ids if limit is None else ids[:limit])


def startable_tasks() -> list[str]:
    """The tasks that could start right now, fairest first: each account's oldest waiting tasks,
    as many as it has free slots."""
    startable = []
    for account in accounts_in_line():
        if account.free_slots != 0:
            startable += waiting_tasks_of(account, account.free_slots)
    return startable


def lock_claims() -> None:
    """Hold the claim lock until the current transaction ends (see the module docstring).

    Two workers choosing at once would mostly pick the same task (each account's oldest) and meet
    on its row anyway; the lock also keeps the claim's hand-over of queue tickets (`jobs.py`), which
    writes two job rows, from deadlocking with another claim's."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CLAIM_LOCK])


def claim_next_task(**fields) -> str | None:
    """Move the fairest task a worker may start now to processing (`lifecycle.transition` with
    `fields`, e.g. the attempt and its lease) and return its id; None when nothing waits, or every
    account with a task waiting is at its cap."""
    with transaction.atomic():
        lock_claims()
        # A candidate cancelled between the choice and the claim is passed over: choose again.
        for _ in range(5):
            account = next((a for a in accounts_in_line() if a.free_slots != 0), None)
            if account is None:
                return None
            task_id = next(iter(waiting_tasks_of(account, 1)), None)
            if task_id is not None and transition(task_id, Status.PROCESSING, **fields):
                return task_id
    return None


def ordinal(number: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 102nd."""
    suffix = "th" if number % 100 in (11, 12, 13) else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


@dataclass(frozen=True)
class PlaceInLine:
    ahead: int  # tasks that start before this one, in the fair order as things stand
    running: int  # tasks of its account running now
    at_cap: bool  # its account runs as many as it may: it waits for one of them to end

    @property
    def position(self) -> int:
        """Its place in line: 1 for the task that starts next."""
        return self.ahead + 1

    def sentence(self, *, guest: bool = False) -> str:
        place = f"{ordinal(self.position)} in line"
        ahead = f"{self.ahead} task{'' if self.ahead == 1 else 's'} ahead of yours"
        if self.at_cap:
            who = "this demo has" if guest else "you have"
            running = f"{self.running} task{'' if self.running == 1 else 's'}"
            if self.ahead == 0:
                return (
                    f"{place}: it starts once one of the {running} {who} running finishes "
                    "(the most that run at once)."
                )
            return f"{place}: {ahead}; {who} {running} running, the most that run at once."
        if self.ahead == 0:
            return f"{place}: it starts as soon as a worker is free."
        return f"{place}: {ahead}."


def _place(accounts: list[Account], account_id: Any, older: int) -> PlaceInLine | None:
    """Where a waiting task stands: counted with the order the workers use. Turns go round the
    accounts with tasks waiting (`accounts`, fairest first), each taking its oldest task. A task
    that is its account's k-th oldest waiting (`older`, from 0) starts on round k, after k tasks
    from every other account that has that many (fewer if it has fewer), and after one more from
    each account ahead of its own in the round."""
    position = next((i for i, account in enumerate(accounts) if account.id == account_id), None)
    if position is None:  # it started or ended meanwhile
        return None
    own, k = accounts[position], older
    ahead = k + sum(
        min(account.waiting, k) + (account.waiting > k and i < position)
        for i, account in enumerate(accounts)
        if i != position
    )
    return PlaceInLine(ahead=ahead, running=own.running, at_cap=own.free_slots == 0)


def _earlier(created_at: datetime | Expression, pk: str | Expression) -> Q:
    """Tasks queued before the one created at `created_at` with id `pk`, in the order each account's
    tasks start (`oldest_first`)."""
    return Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk)


def place_in_line(task_id: str, created_at: datetime) -> PlaceInLine | None:
    """Where the queued task `task_id` (created at `created_at`) stands; None once it is not
    queued. One statement: the accounts in line, with which of them is the task's and how many of
    its waiting tasks are older."""
    queued = Q(status=Status.QUEUED)
    rows = _accounts_waiting(
        mine=Count("pk", filter=queued & Q(pk=task_id)),
        older=Count("pk", filter=queued & _earlier(created_at, task_id)),
    )
    own = next((row for row in rows if row["mine"]), None)
    if own is None:
        return None
    return _place(_fairest_first(rows), own["account"], own["older"])


def queue_position(task_id: str, status: str, created_at: datetime) -> int | None:
    """A task's place in line (`PlaceInLine.position`: 1 starts next), from its status and when it
    was created; None, without a statement, for a task that is not queued."""
    if status != Status.QUEUED:
        return None
    place = place_in_line(task_id, created_at)
    return place.position if place else None


def queue_positions(tasks: Iterable[Task]) -> dict[str, int]:
    """The place in line (`PlaceInLine.position`) of each queued task among `tasks`, by id: for a
    page of tasks, in two statements whatever their number (none without a queued task)."""
    queued = {task.pk: task for task in tasks if task.status == Status.QUEUED}
    if not queued:
        return {}
    accounts = accounts_in_line()
    older = (
        tasks_by_account()
        .filter(_earlier(OuterRef("created_at"), OuterRef("pk")), status=Status.QUEUED)
        .filter(account=OuterRef("account"))
        .order_by()
        .values("account")
        .annotate(count=Count("pk"))
        .values("count")
    )
    rows = (
        tasks_by_account()
        .filter(pk__in=list(queued), status=Status.QUEUED)
        .annotate(older=Coalesce(Subquery(older), 0))
        .values_list("pk", "account", "older")
    )
    places = {task_id: _place(accounts, account, k) for task_id, account, k in rows}
    return {task_id: place.position for task_id, place in places.items() if place is not None}
