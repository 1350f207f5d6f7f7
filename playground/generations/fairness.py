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

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Min, OuterRef, Q, Subquery
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


def accounts_in_line() -> list[Account]:
    """Every account with a task waiting, fairest first."""
    tasks = tasks_by_account()
    last_started = (
        tasks.filter(account=OuterRef("account"), started_at__isnull=False)
        .order_by("-started_at")
        .values("started_at")[:1]
    )
    waiting = (
        tasks.filter(status=Status.QUEUED)
        .values("account")
        .annotate(count=Count("pk"), oldest=Min("created_at"), last_started=Subquery(last_started))
        .order_by()
    )
    rows = list(waiting)
    running = dict(
        tasks.filter(status=Status.PROCESSING, account__in=[row["account"] for row in rows])
        .values("account")
        .annotate(count=Count("pk"))
        .order_by()
        .values_list("account", "count")
    )
    accounts = [
        Account(
            row["account"], row["count"], running.get(row["account"], 0), row["oldest"], row["last_started"]
        )
        for row in rows
    ]
    return sorted(accounts, key=lambda account: account.turn)


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


@dataclass(frozen=True)
class PlaceInLine:
    ahead: int  # tasks that start before this one, in the fair order as things stand
    running: int  # tasks of its account running now
    at_cap: bool  # its account runs as many as it may: it waits for one of them to end

    def sentence(self, *, guest: bool = False) -> str:
        ahead = f"Waiting: {self.ahead} task{'' if self.ahead == 1 else 's'} ahead of yours"
        if self.at_cap:
            who = "this demo has" if guest else "you have"
            running = f"{self.running} task{'' if self.running == 1 else 's'}"
            if self.ahead == 0:
                return (
                    f"Next in line once one of the {running} {who} running finishes "
                    "(the most that run at once)."
                )
            return f"{ahead}; {who} {running} running, the most that run at once."
        if self.ahead == 0:
            return "Next in line: it starts as soon as a worker is free."
        return f"{ahead}."


def place_in_line(task: Task) -> PlaceInLine | None:
    """Where a queued task stands (None once it is not queued).

    Counted with the order the workers use: turns go round the accounts with tasks waiting, fairest
    first, each taking its oldest task. A task that is its account's k-th oldest waiting (from 0)
    starts on round k, after k tasks from every other account that has that many (fewer if it has
    fewer), and after one more from each account ahead of its own in the round.
    """
    if task.status != Status.QUEUED:
        return None
    accounts = accounts_in_line()
    # Its account and how many of that account's waiting tasks are older, in one statement.
    earlier = Q(created_at__lt=task.created_at) | Q(created_at=task.created_at, pk__lt=task.pk)
    older = (
        tasks_by_account()
        .filter(earlier, status=Status.QUEUED, account=OuterRef("account"))
        .order_by()
        .values("account")
        .annotate(count=Count("pk"))
        .values("count")
    )
    mine, k = (
        tasks_by_account()
        .filter(pk=task.pk)
        .annotate(older=Coalesce(Subquery(older), 0))
        .values_list("account", "older")
        .first()
    ) or (None, 0)
    position = next((i for i, account in enumerate(accounts) if account.id == mine), None)
    if position is None:  # it started or ended meanwhile
        return None
    own = accounts[position]
    ahead = k + sum(
        min(account.waiting, k) + (account.waiting > k and i < position)
        for i, account in enumerate(accounts)
        if i != position
    )
    return PlaceInLine(ahead=ahead, running=own.running, at_cap=own.free_slots == 0)
