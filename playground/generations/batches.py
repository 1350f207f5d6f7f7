"""Batches: one request that makes a task per cell of a grid, the models chosen times the values of
up to two varied input fields, all or none.

Each cell is checked and priced as a task on its own is (`services.price_task`); then, under one
lock of every applicable budget (`services.lock_spend_limits`), the batch's total is checked and
every task is created in one transaction (`services.new_task`, `services.queue_tasks`). A refused
batch (SubmitError) creates no task and names the cell that stopped it (`vary.size[2]`,
`models[1]`, or the input field every cell shares).

With several models, `input` is written for the first; each other model takes it as switching
models in the playground does (`catalog.schema_forms.translate_input`): a value left at the first
model's default stays behind (the model starts from its own), a field playing a role under another
name moves there, and a choice takes the model's spelling ("1K" for "1k"). Each model's tasks get
the input fields that model has: a field only some of them have is left out of the others' tasks,
and the batch says so (`left_out`, per model). A varied field must be one every chosen model has.
"""

import hashlib
import json
import math
from dataclasses import dataclass
from decimal import Decimal
from itertools import product
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from playground.catalog.models import CatalogEntry
from playground.catalog.pricing import MAX_PRICE
from playground.catalog.schema_forms import translate_input
from playground.catalog.validation import FieldError

from .inputs import canonical_json_chunks, release, store_inputs
from .models import Batch
from .services import (
    PricedTask,
    SubmitError,
    check_idempotency_key,
    check_replay,
    check_spend_limits,
    find_model,
    lock_spend_limits,
    new_task,
    price_task,
    queue_tasks,
    request_hash,
)

MAX_VARIED_FIELDS = 2


@dataclass(frozen=True)
class BatchSubmission:
    batch: Batch
    created: bool  # False: an idempotent replay of an earlier request


@dataclass(frozen=True)
class Cell:
    model_index: int
    entry: CatalogEntry
    values: tuple  # one value per varied field, in the order of `vary`
    indexes: tuple  # where each value is in its field's list
    data: dict


def batch_request_hash(body: dict) -> str:
    """A hash of the batch's request as received (its model or models, input and vary)."""
    request = {name: body[name] for name in ("model", "models", "input", "vary") if name in body}
    digest = hashlib.sha256()
    for chunk in canonical_json_chunks(request):
        digest.update(chunk)
    return digest.hexdigest()


def invalid(field: str, message: str, code: str = "invalid_batch") -> SubmitError:
    return SubmitError(422, "invalid_batch", message, [FieldError(field, message, code)])


def _model_slugs(body: dict) -> tuple[list[Any], bool]:
    """The slugs the batch names, and whether it named them as `models` (a list)."""
    if "model" in body and "models" in body:
        raise invalid("models", "Give either model or models, not both.")
    if "models" not in body:
        if body.get("model") is None:
            raise invalid(
                "model", "This field is required: a model's slug, or models: a list of them.", "required"
            )
        return [body["model"]], False
    slugs = body["models"]
    if not isinstance(slugs, list) or not slugs:
        raise invalid("models", "Must be a list of at least one model's slug.", "wrong_type")
    return slugs, True


def _first_repeat(values: list) -> tuple[int, int] | None:
    """Where a value of `values` first repeats an earlier one: (its index, the earlier one's), or
    None. In one pass (a dict of what was seen): the lists are not capped yet when this runs."""
    seen: dict[str, int] = {}
    for index, value in enumerate(values):
        first = seen.setdefault(json.dumps(value, sort_keys=True, default=str), index)
        if first != index:
            return index, first
    return None


def _check_repeats(slugs: list, vary: dict[str, list]) -> None:
    """A model named twice, or a varied field's value given twice, is refused naming the second."""
    if (repeat := _first_repeat(slugs)) is not None:
        index = repeat[0]
        raise invalid(f"models[{index}]", f"{slugs[index]} is in the list already.", "duplicate")
    for field, values in vary.items():
        if (repeat := _first_repeat(values)) is not None:
            index, first = repeat
            raise invalid(f"vary.{field}[{index}]", f"The same value as vary.{field}[{first}].", "duplicate")


def _varied(body: dict) -> dict[str, list]:
    vary = body.get("vary", {})
    if not isinstance(vary, dict):
        raise invalid(
            "vary", "Must be an object: each field to vary, with a list of its values.", "wrong_type"
        )
    if len(vary) > MAX_VARIED_FIELDS:
        raise invalid("vary", f"At most {MAX_VARIED_FIELDS} fields may vary in one batch.", "too_many")
    for field, values in vary.items():
        if not isinstance(values, list) or not values:
            raise invalid(f"vary.{field}", "Must be a list of at least one value.", "wrong_type")
    return vary


def _fields(entry: CatalogEntry) -> set[str]:
    properties = entry.input_schema.get("properties")
    return set(properties) if isinstance(properties, dict) else set()


def _in_cell(exc: SubmitError, cell: Cell, vary: dict, slugs_listed: bool, several: bool) -> SubmitError:
    """`exc`, a refusal of one cell's task, with its fields named in the batch's request: a varied
    field's value as `vary.<field>[i]`, the model as `models[i]`; with several models, each message
    says which model's task it is."""

    def rename(field: str) -> str:
        if field == "model" and slugs_listed:
            return f"models[{cell.model_index}]"
        for name, index in zip(vary, cell.indexes, strict=True):
            prefix = f"input.{name}"
            if field == prefix or field.startswith((prefix + "[", prefix + ".")):
                return f"vary.{name}[{index}]{field[len(prefix) :]}"
        return field

    def say(message: str) -> str:
        return f"{cell.entry.slug}: {message}" if several else message

    errors = [FieldError(rename(error.field), say(error.message), error.code) for error in exc.errors]
    return SubmitError(exc.status, exc.code, say(exc.message), errors)


def _replay(owner, idempotency_key: str, digest: str, team_id) -> BatchSubmission | None:
    existing = Batch.objects.filter(owner=owner, idempotency_key=idempotency_key).first()
    if existing is None:
        return None
    check_replay(existing, digest, team_id, what="a batch")
    return BatchSubmission(existing, created=False)


def _as_stored(name: str, position: int, values: list, cells: list[Cell], inputs: list) -> list:
    """The values of varied field `name` (the `position`-th of `vary`) as its cells' tasks hold
    them: a data URI as the reference to its stored input file, never its bytes (the batch's axes
    are answered with every POST and GET of the batch)."""
    stored = list(values)
    for cell, data in zip(cells, inputs, strict=True):
        stored[cell.indexes[position]] = data[name]
    return stored


def submit_batch(
    owner,
    body: dict,
    *,
    request_id: str,
    idempotency_key: str | None = None,
    api_key=None,
    team_id=None,
    demo_pass=None,
    guest: str = "",
    base_url: str = "",
    source: str = "api",
) -> BatchSubmission:
    """Check, price and queue a task for every cell of the batch `body` describes (`{"model" or
    "models", "input", "vary"}`), all or none; replay the original batch for a repeated
    Idempotency-Key (same body), 409 for the key with another body.

    At most PLAYGROUND_MAX_BATCH_TASKS cells (422 naming the count). The batch's total estimate
    must fit every budget that applies (402 naming the one it does not), their rows locked once."""
    check_idempotency_key(idempotency_key)
    digest = batch_request_hash(body)
    if idempotency_key and (replayed := _replay(owner, idempotency_key, digest, team_id)):
        return replayed
    slugs, slugs_listed = _model_slugs(body)
    data = body.get("input", {})
    if not isinstance(data, dict):
        raise invalid("input", "Must be a JSON object.", "wrong_type")
    vary = _varied(body)
    count = len(slugs) * math.prod(len(values) for values in vary.values())
    if count > settings.PLAYGROUND_MAX_BATCH_TASKS:
        message = (
            f"This batch would make {count} tasks; at most {settings.PLAYGROUND_MAX_BATCH_TASKS} "
            "may be made at once: vary fewer values or models."
        )
        raise SubmitError(422, "batch_too_large", message, [FieldError("vary", message, "too_many")])
    _check_repeats(slugs, vary)  # after the cap: never over more values than a batch may have
    entries = []
    for index, slug in enumerate(slugs):
        try:
            entries.append(find_model(slug))
        except SubmitError as exc:
            if slugs_listed:
                errors = [FieldError(f"models[{index}]", error.message, error.code) for error in exc.errors]
                raise SubmitError(exc.status, exc.code, exc.message, errors) from exc
            raise
    for name in vary:
        for entry in entries:
            if name not in _fields(entry):
                message = f"{entry.slug} has no field called “{name}”: only fields every model has may vary."
                raise invalid(f"vary.{name}", message, "unknown_field")
    several = len(entries) > 1
    left_out: dict[str, list[str]] = {}
    cells = []
    for model_index, entry in enumerate(entries):
        # The input is the first model's; another takes it in its own terms (see the docstring).
        written = translate_input(entries[0], entry, data) if model_index else dict(data)
        kept = written
        if several:  # a field another chosen model has; one no model has is refused as for a task
            anyone_has = set().union(*map(_fields, entries))
            dropped = sorted(name for name in written if name not in _fields(entry) and name in anyone_has)
            kept = {name: value for name, value in written.items() if name not in dropped}
            if dropped:
                left_out[entry.slug] = dropped
        for pairs in product(*(list(enumerate(values)) for values in vary.values())):
            indexes = tuple(index for index, _ in pairs)
            values = tuple(value for _, value in pairs)
            cells.append(
                Cell(model_index, entry, values, indexes, {**kept, **dict(zip(vary, values, strict=True))})
            )
    priced: list[PricedTask] = []
    try:
        for cell in cells:
            try:
                priced.append(
                    price_task(
                        owner, cell.entry, cell.data, api_key=api_key, demo_pass=demo_pass, guest=guest
                    )
                )
            except SubmitError as exc:
                raise _in_cell(exc, cell, vary, slugs_listed, several) from exc
    except BaseException:
        for item in priced:
            release(item.prepared)
        raise
    total = sum((item.cost_estimate for item in priced), Decimal(0))
    if total > MAX_PRICE:  # each cell's fits the ledger (`price_task`); their sum must too
        for item in priced:
            release(item.prepared)
        message = f"This batch comes to {total}, which is no price: check the counts and durations."
        raise SubmitError(422, "invalid_batch", message, [FieldError("vary", message, "no_price")])
    inputs = []
    for index, item in enumerate(priced):  # files written before the transaction
        try:
            inputs.append(store_inputs(owner, item.data, item.prepared, base_url))
        except BaseException:
            for rest in priced[index + 1 :]:
                release(rest.prepared)
            raise
    axes = [{"field": "model", "values": [entry.slug for entry in entries]}]
    axes += [
        {"field": name, "values": _as_stored(name, position, values, cells, inputs)}
        for position, (name, values) in enumerate(vary.items())
    ]
    try:
        with transaction.atomic():
            limits = lock_spend_limits(api_key=api_key, demo_pass=demo_pass, team_id=team_id, member=owner)
            # As in submit_task: a repeat created while this one waited for the lock replays it.
            if limits and idempotency_key and (replayed := _replay(owner, idempotency_key, digest, team_id)):
                return replayed
            check_spend_limits(total, limits=limits, what=f"batch of {len(cells)} tasks")
            batch = Batch(
                owner=owner,
                team_id=team_id,
                api_key=api_key,
                demo_pass=demo_pass,
                guest=guest if demo_pass is not None else "",
                axes=axes,
                left_out=left_out,
                cost_estimate=total,
                request_id=request_id,
                idempotency_key=idempotency_key or None,
                request_hash=digest,
            )
            tasks = [
                new_task(
                    owner,
                    cell.entry,
                    stored,
                    item.cost_estimate,
                    team_id=team_id,
                    api_key=api_key,
                    demo_pass=demo_pass,
                    guest=guest,
                    batch=batch,
                    request_id=request_id,
                    request_hash=request_hash(cell.entry.slug, cell.data),
                    source=source,
                )
                for cell, item, stored in zip(cells, priced, inputs, strict=True)
            ]
            batch.task_ids = [task.pk for task in tasks]
            batch.save(force_insert=True)  # first: a concurrent twin stops here (IntegrityError)
            queue_tasks(tasks)
    except IntegrityError:
        if idempotency_key and (replayed := _replay(owner, idempotency_key, digest, team_id)):
            return replayed
        raise
    return BatchSubmission(batch, created=True)
