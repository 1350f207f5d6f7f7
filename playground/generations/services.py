"""Business rules for tasks, shared by the API and the browser: submit and cancel.

No transaction here spans engine work or network I/O. A task's status moves only through
`lifecycle.transition`; a submitted task is queued for the worker with `jobs.enqueue_task`.

Money: `cost_actual` is what a task really cost. It is set when the task ends (the engine's charge;
0 when nothing was billed), except for a task cancelled or failed while an upstream platform had it:
that one keeps NULL until the platform's charge is known (`record_charge`), and spend checks count
it at its estimate meanwhile, like a running task.
"""

import hashlib
from contextlib import suppress
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, DecimalField, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce

from playground.access.passes import PASS_ENDED
from playground.catalog.models import CatalogEntry
from playground.catalog.pricing import NoPrice, dollars, estimate_cost
from playground.catalog.text import text_problem
from playground.catalog.validation import FieldError
from playground.engines.fetch import FetchError, check_url, submit_lookups
from playground.keys.models import ApiKey, DemoPass
from playground.keys.periods import budget_name, period_start
from playground.teams.models import Membership, Team

from .inputs import (
    PreparedInput,
    as_payloads,
    canonical_json_chunks,
    prepare_inputs,
    release,
    store_inputs,
)
from .jobs import enqueue_task
from .lifecycle import transition
from .models import TERMINAL, Status, Task, TaskEvent

# Engines whose work an upstream platform bills: a task of theirs that reached the platform may be
# charged even if it is then cancelled or fails here.
UPSTREAM_BILLED_ENGINES = frozenset({"mindvideo"})
MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_WEBHOOK_URL_LENGTH = 2000  # Task.webhook_url's max_length


class SubmitError(Exception):
    """A submission refused before any task exists. `status` is the HTTP status it maps to."""

    def __init__(self, status: int, code: str, message: str, errors: list[FieldError] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or []

    @property
    def field(self) -> str | None:
        return self.errors[0].field if self.errors else None


class TaskConflict(Exception):
    """The task is in a state that does not allow the request (e.g. cancel after it ended)."""


@dataclass(frozen=True)
class Submission:
    task: Task
    created: bool  # False: an idempotent replay of an earlier request


def request_hash(model_slug: str, data: Any, webhook_url: Any = "") -> str:
    """A hash of the canonical request, as received: data URIs and uploads count as the data
    URIs they are, before they are stored as input files. `webhook_url` counts only when given,
    so requests without one hash as they always did."""
    request = {"model": model_slug, "input": data}
    if webhook_url:
        request["webhook_url"] = webhook_url
    digest = hashlib.sha256()
    for chunk in canonical_json_chunks(request):
        digest.update(chunk)
    return digest.hexdigest()


def engine_for(entry: CatalogEntry) -> str:
    """PLAYGROUND_ENGINE overrides every entry; otherwise the entry's own, else `local`."""
    return settings.PLAYGROUND_ENGINE or entry.engine or "local"


def webhook_errors(webhook_url: Any) -> list[FieldError]:
    """A webhook target must pass the same address rules as fetched inputs (no private targets
    unless allow-listed). A name that does not resolve yet passes; delivery checks it again."""
    if webhook_url in (None, ""):
        return []
    if not isinstance(webhook_url, str) or len(webhook_url) > MAX_WEBHOOK_URL_LENGTH:
        message = f"Must be an http(s) URL of at most {MAX_WEBHOOK_URL_LENGTH} characters."
        return [FieldError("webhook_url", message, "invalid_url")]
    try:
        check_url(webhook_url, unresolvable_ok=True)
    except FetchError as exc:
        return [FieldError("webhook_url", exc.message, exc.code)]
    return []


def check_input(entry: CatalogEntry, data: Any, owner=None) -> list[FieldError]:
    """Everything wrong with `data` for `entry`: the schema, cross-field rules, then media (data
    URIs and uploads on their bytes, references to input files, hosted URLs)."""
    with submit_lookups():
        errors, prepared = prepare_inputs(entry, as_payloads(entry, data), owner)
    release(prepared)
    return errors


def find_model(slug: Any) -> CatalogEntry:
    entry = None
    # Not text (a NUL, a lone surrogate) is no slug, and no database is asked about it.
    if isinstance(slug, str) and slug and text_problem(slug) is None:
        entry = CatalogEntry.objects.filter(slug=slug, is_active=True).first()
    if entry is None:
        raise SubmitError(
            422,
            "unknown_model",
            "No such model.",
            [FieldError("model", "No such model: see GET /api/v1/models.", "unknown_model")],
        )
    return entry


def check_idempotency_key(idempotency_key: str | None) -> None:
    """400 `invalid_idempotency_key` for a key that is empty, too long or holds a control character."""
    if idempotency_key is not None and (
        not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_LENGTH or text_problem(idempotency_key)
    ):
        raise SubmitError(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters, none of them a control "
            "character.",
        )


def check_replay(existing, digest: str, team_id, what: str = "a request") -> None:
    """Whether `existing` (the task or batch an Idempotency-Key made) may be replayed for a request
    with hash `digest` in workspace `team_id`, else 409 saying why. Keys are unique per account,
    across its workspaces: a key spent in another workspace (personal, or a team's) never replays
    there, which would hand one workspace's work to another."""
    if existing.team_id != team_id:
        raise SubmitError(
            409,
            "idempotency_key_reused",
            "This idempotency key was already used in another workspace of your account (personal or "
            "a team's): use a new key for a new request.",
        )
    if existing.request_hash != digest:
        raise SubmitError(
            409,
            "idempotency_key_reused",
            f"This idempotency key was already used for {what} with different inputs: "
            "use a new key for a new request.",
        )


def _replay(owner, idempotency_key: str, digest: str, team_id=None) -> Submission | None:
    # With its model, which the answer names (`task_body`): no second read for it.
    tasks = Task.objects.select_related("model", "owner")
    existing = tasks.filter(owner=owner, idempotency_key=idempotency_key).first()
    if existing is None:
        return None
    check_replay(existing, digest, team_id)
    return Submission(existing, created=False)


def submit_task(
    owner,
    model: Any,
    data: Any,
    *,
    request_id: str,
    idempotency_key: str | None = None,
    api_key=None,
    source: str = "api",
    webhook_url: Any = "",
    demo_pass=None,
    guest: str = "",
    base_url: str = "",
    team_id=None,
) -> Submission:
    """Validate, price and queue a task; replay the original for a repeated Idempotency-Key.

    `model` is the slug as the request gave it (checked here: `find_model`), or the active
    CatalogEntry the caller has loaded already (the browser, which found it to show its form).

    A refused request (SubmitError) never consumes the key. Concurrent requests with one key create
    one task: the unique constraint decides, and the losers replay the winner. With a `webhook_url`,
    the task's final state is POSTed there when it ends (see `webhooks.py`). Data URIs and uploads
    in `data` are stored as the owner's input files, and the task's input references them by URL
    under `base_url` (the origin the request came to; see `inputs.py`).
    """
    check_idempotency_key(idempotency_key)
    slug = model.slug if isinstance(model, CatalogEntry) else model
    digest = request_hash(slug if isinstance(slug, str) else repr(slug), data, webhook_url)
    if idempotency_key and (replayed := _replay(owner, idempotency_key, digest, team_id)):
        return replayed
    entry = model if isinstance(model, CatalogEntry) else find_model(model)
    priced = price_task(
        owner, entry, data, api_key=api_key, webhook_url=webhook_url, demo_pass=demo_pass, guest=guest
    )
    data = store_inputs(owner, priced.data, priced.prepared, base_url)  # files written before the transaction
    try:
        with transaction.atomic():
            limits = lock_spend_limits(api_key=api_key, demo_pass=demo_pass, team_id=team_id, member=owner)
            # Under the same lock as the budget check: a repeat of a request that was created while
            # this one waited replays it (200), never counts it against itself (402). With no limit
            # to count against, the unique constraint decides (IntegrityError below) and no read is
            # needed.
            if limits and idempotency_key and (replayed := _replay(owner, idempotency_key, digest, team_id)):
                return replayed
            check_spend_limits(priced.cost_estimate, limits=limits)
            task = new_task(
                owner,
                priced.entry,
                data,
                priced.cost_estimate,
                team_id=team_id,
                api_key=api_key,
                demo_pass=demo_pass,
                guest=guest,
                request_id=request_id,
                idempotency_key=idempotency_key or None,
                request_hash=digest,
                source=source,
                webhook_url=webhook_url or "",
            )
            queue_tasks([task])
    except IntegrityError:
        if idempotency_key and (replayed := _replay(owner, idempotency_key, digest, team_id)):
            return replayed
        raise
    return Submission(task, created=True)


@dataclass
class PricedTask:
    """A task's input that passed every check, with its price: `data` holds its media as payloads
    and `prepared` the checked files waiting to be stored (`store_inputs`, which releases them)."""

    entry: CatalogEntry
    data: Any
    prepared: list[PreparedInput]
    cost_estimate: Decimal


def price_task(
    owner,
    entry: CatalogEntry,
    data: Any,
    *,
    api_key=None,
    webhook_url: Any = "",
    demo_pass=None,
    guest: str = "",
) -> PricedTask:
    """Everything submitting checks of one task before it is stored (SubmitError for the first
    refusal): the key may use the model, the input (schema, rules, media) and the webhook URL, the
    demo pass includes the model, and the input has a price. Nothing is written."""
    if api_key is not None and not api_key.allows_model(entry.slug):
        # Before the input is read: a key that may not use the model hears so, not that model's
        # input errors (nor are its files fetched or stored).
        message = (
            f"This API key may not use {entry.slug}; its owner chose the models it may use "
            "(GET /api/v1/models lists them)."
        )
        raise SubmitError(
            403, "model_not_allowed", message, [FieldError("model", message, "model_not_allowed")]
        )
    data = as_payloads(entry, data)
    # The media to store, waiting in temporary files (a refusal below drops them, unstored).
    with submit_lookups():
        input_errors, prepared = prepare_inputs(entry, data, owner, guest)
        errors = input_errors + webhook_errors(webhook_url)
    if errors:
        release(prepared)
        if any(error.code == "too_large" for error in errors):  # a data URI over the size limit
            too_large = [error for error in errors if error.code == "too_large"]
            raise SubmitError(413, "payload_too_large", too_large[0].message, too_large)
        code = "invalid_input" if input_errors else "invalid_webhook_url"
        raise SubmitError(422, code, errors[0].message, errors)
    if demo_pass is not None and entry.slug not in demo_pass.model_slugs:
        release(prepared)
        raise SubmitError(
            422,
            "unknown_model",
            "This demo pass does not include that model.",
            [FieldError("model", "This demo pass does not include that model.", "unknown_model")],
        )
    try:
        cost_estimate = estimate_cost(entry, data)
    except (NoPrice, ArithmeticError) as exc:  # a schema that leaves a count or duration unbounded
        release(prepared)
        refusal = FieldError("input", str(exc), "no_price")
        raise SubmitError(422, "invalid_input", refusal.message, [refusal]) from exc
    return PricedTask(entry, data, prepared, cost_estimate)


def new_task(
    owner,
    entry: CatalogEntry,
    data: Any,
    cost_estimate: Decimal,
    *,
    demo_pass=None,
    guest: str = "",
    **fields,
) -> Task:
    """A task row not saved yet (`queue_tasks` saves it), with its input stored (`store_inputs`).
    `fields`: the rest of its columns (team_id, api_key, request_id, idempotency_key, …)."""
    return Task(
        owner=owner,
        demo_pass=demo_pass,
        guest=guest if demo_pass is not None else "",
        model=entry,
        input=data,
        engine=engine_for(entry),
        cost_estimate=cost_estimate,
        **fields,
    )


def queue_tasks(tasks: list[Task]) -> None:
    """Insert `tasks` (from `new_task`) with their `queued` events, and queue each for a worker once
    the transaction commits. Inside the transaction that checked their spend."""
    if len(tasks) == 1:
        tasks[0].save(force_insert=True)
    else:
        Task.objects.bulk_create(tasks)
    TaskEvent.objects.bulk_create(
        TaskEvent(task=task, kind="status", status=Status.QUEUED, message="Queued.") for task in tasks
    )
    for task in tasks:
        transaction.on_commit(lambda pk=task.pk: enqueue_task(pk))


def committed_spend(tasks) -> Decimal:
    """Money a set of tasks has spent or holds: what each was charged, and the estimate of each
    whose charge is not known yet (running, or cancelled or failed while an upstream platform had
    it and may still bill it)."""
    total = tasks.aggregate(total=Sum(Coalesce("cost_actual", "cost_estimate")))["total"]
    return Decimal(total or 0).quantize(Decimal("0.0001"))


# (its name, e.g. "the key's monthly budget"; the limit; the tasks it counts)
SpendLimit = tuple[str, Decimal, QuerySet]


def in_period(tasks: QuerySet, period: str) -> QuerySet:
    """The `tasks` a budget of `period` counts now: those made since the period started (every
    one, for a budget for all time)."""
    start = period_start(period)
    return tasks.filter(created_at__gte=start) if start else tasks


def lock_spend_limits(*, api_key=None, demo_pass=None, team_id=None, member=None) -> list[SpendLimit]:
    """The limits a submit must fit in, their rows locked until the transaction ends (SELECT … FOR
    UPDATE on PostgreSQL; SQLite's IMMEDIATE transactions already serialize writers): the key's
    budget, a demo pass's cap, and for a team's task the team's budget and the member's own budget
    in it. All apply together; the first one a task would go over is the one the refusal names."""
    limits = []
    if team_id is not None:
        limits += _team_limits(team_id, member)
    if api_key is not None:
        # The budget as it is now, never the authenticated copy's (a process keeps a key a second).
        # Locked only where there is one: the copy says where to expect it, the row has the last word.
        row = ApiKey.objects.filter(pk=api_key.pk).values_list("budget", "budget_period")
        budget = None if api_key.budget is not None else row.first()
        if api_key.budget is not None or (budget is not None and budget[0] is not None):
            budget = row.select_for_update().first()
        if budget is not None and budget[0] is not None:
            amount, period = budget
            tasks = in_period(Task.objects.filter(api_key_id=api_key.pk), period)
            limits.append((budget_name("the key's", period), amount, tasks))
    if demo_pass is not None:
        locked = DemoPass.objects.select_for_update().get(pk=demo_pass.pk)
        if locked.status != "active":
            # Revoked or expired while this submit was being checked: revoking cancels the pass's
            # unfinished tasks, so a task made after that sweep would run on a revoked pass.
            message = PASS_ENDED[locked.status]
            raise SubmitError(403, f"demo_pass_{locked.status}", message)
        limits.append(("the demo pass's budget", locked.spend_cap, Task.objects.filter(demo_pass=locked)))
    return limits


def _team_limits(team_id, member) -> list[SpendLimit]:
    team = Team.objects.select_for_update().filter(pk=team_id).values_list("budget", "budget_period").first()
    membership = (
        Membership.objects.select_for_update()
        .filter(team_id=team_id, user_id=member.pk)
        .values_list("budget", "budget_period")
        .first()
    )
    if team is None or membership is None:  # removed from the team since the key was read
        raise SubmitError(403, "not_a_member", "You are no longer a member of this team.")
    limits = []
    for (amount, period), whose, where, tasks in (
        (team, "the team's", "", Task.objects.filter(team_id=team_id)),
        (membership, "your", " in the team", Task.objects.filter(team_id=team_id, owner_id=member.pk)),
    ):
        if amount is not None:
            limits.append((budget_name(whose, period) + where, amount, in_period(tasks, period)))
    return limits


def check_spend_limits(
    cost_estimate: Decimal,
    *,
    api_key=None,
    demo_pass=None,
    limits: list[SpendLimit] | None = None,
    what: str = "task",
) -> None:
    """Refuse (402 budget_exceeded) a task (or, as `what` says, a batch of them: `cost_estimate`
    is then their total) that would take a key, a team, a member or a demo pass over its limit.

    Runs inside the submit transaction with the key / pass row locked (`lock_spend_limits`, or the
    `limits` it returned), so concurrent submits cannot all slip under the limit together.
    """
    if limits is None:
        limits = lock_spend_limits(api_key=api_key, demo_pass=demo_pass)
    for budget, limit, tasks in limits:
        spent = committed_spend(tasks)
        if spent + cost_estimate > limit:
            left = max(limit - spent, Decimal(0))
            raise SubmitError(
                402,
                "budget_exceeded",
                f"This {what} (about {dollars(cost_estimate)}) would go over {budget}: "
                f"{dollars(left)} of {dollars(limit)} is left.",
            )


def cancel_task(task: Task) -> Task:
    """Cancel a queued or processing task (the engine stops at its next check); 409 if it ended.

    Nothing is charged for a task that never reached an upstream platform. One that may have (a
    processing task of an upstream-billed engine, or one with an upstream task already) keeps its
    charge unknown: the engine stops, cancels the upstream task and records what the platform
    billed, which stands if it had finished (`record_charge`; the reaper settles it if nobody can).
    """
    may_be_billed = Q(engine__in=UPSTREAM_BILLED_ENGINES) & (Q(status=Status.PROCESSING) | ~Q(upstream_id=""))
    cost = Case(
        When(may_be_billed, then=Value(None)),
        default=Value(Decimal(0)),
        output_field=DecimalField(max_digits=12, decimal_places=4),
    )
    if not transition(task.pk, Status.CANCELLED, message="Cancelled by the user.", cost_actual=cost):
        raise TaskConflict(f"The task has already {Task.objects.get(pk=task.pk).status}.")
    task.refresh_from_db()
    return task


def cancel_unfinished(tasks) -> int:
    """Cancel every task of `tasks` that has not ended (e.g. a revoked demo pass's): how many."""
    cancelled = 0
    for task in tasks.exclude(status__in=TERMINAL).only("pk"):
        with suppress(TaskConflict):  # it ended meanwhile
            cancel_task(task)
            cancelled += 1
    return cancelled
