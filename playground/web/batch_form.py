"""The playground form's batch controls: "Vary" beside a choice, number or switch (the values to run
it with) and "Also run on" (other models that take the same prompt). They turn the form into the
body of a batch (`generations.batches.submit_batch`, the API's service), priced cell by cell.

Form field names: the values of a field `size` to vary are `vary__size` (a checkbox per choice; one
comma list for a number; `both` for a switch); the other models are `also_run_on`.
"""

import math
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import product
from typing import Any

from django.conf import settings

from playground.catalog.models import CatalogEntry
from playground.catalog.pricing import estimate_cost
from playground.catalog.schema_forms import SchemaForm
from playground.generations.batches import MAX_VARIED_FIELDS

VARIABLE_KINDS = ("choice", "integer", "number", "boolean")
ALSO_RUN_ON = "also_run_on"


def vary_field(name: str) -> str:
    return f"vary__{name}"


def offered_models(entry: CatalogEntry, entries) -> list[CatalogEntry]:
    """The models "Also run on" offers beside `entry`: those of `entries` (the caller's) whose
    prompt is the field `entry`'s prompt is, so the prompt typed reaches every cell."""
    prompt = entry.roles.get("prompt")
    if not prompt:
        return []
    others = entries.exclude(pk=entry.pk).only("slug", "title", "kind", "roles").order_by("kind", "title")
    return [other for other in others if other.roles.get("prompt") == prompt]


@dataclass
class BatchChoice:
    """What the form's batch controls ask for: `models` besides the form's own, `vary` (field ->
    values, in the order given) and what could not be read (`errors`: form field -> message, None
    for the form as a whole)."""

    models: list[CatalogEntry] = field(default_factory=list)
    vary: dict[str, list] = field(default_factory=dict)
    errors: dict[str | None, str] = field(default_factory=dict)

    @property
    def wanted(self) -> bool:
        return bool(self.models or self.vary or self.errors)

    @property
    def runs(self) -> int:
        return (1 + len(self.models)) * math.prod(len(values) for values in self.vary.values())

    def body(self, entry: CatalogEntry, data: dict) -> dict:
        """The batch's request, as `POST /api/v1/batches` takes it."""
        models = {"models": [entry.slug, *(m.slug for m in self.models)]} if self.models else {}
        return {**(models or {"model": entry.slug}), "input": data, "vary": self.vary}


def _number(spec, text: str) -> Any:
    return int(text) if spec.kind == "integer" else float(text)


def _values(spec, raw: list[str]) -> list:
    """A field's values to vary as the form sent them, typed as the schema's; ValueError naming
    one it cannot read."""
    if spec.kind == "boolean":
        return [False, True] if "both" in raw else []
    if spec.kind == "choice":
        coerce = {"integer": int, "number": float}.get(spec.type or "", str)
        values = []
        for value in raw:
            try:
                values.append(coerce(value))
            except ValueError:
                raise ValueError(f"“{value}” is not one of its values.") from None
        return values
    values = []
    for part in (part.strip() for text in raw for part in text.split(",")):
        if not part:
            continue
        try:
            values.append(_number(spec, part))
        except ValueError:
            what = "a whole number" if spec.kind == "integer" else "a number"
            raise ValueError(f"“{part}” is not {what}: give values separated by commas.") from None
    return values


def batch_choice(form: SchemaForm, data, entries) -> BatchChoice:
    """Read the batch controls of the submitted `data` (a QueryDict) for `form`'s model; `entries`
    are the models the caller may run."""
    choice = BatchChoice()
    for spec in form.specs:
        if spec.kind not in VARIABLE_KINDS:
            continue
        raw = [value for value in data.getlist(vary_field(spec.name)) if value.strip()]
        try:
            values = _values(spec, raw)
        except ValueError as exc:
            choice.errors[spec.name] = f"Vary {spec.label}: {exc}"
            continue
        unique = list({repr(value): value for value in values}.values())  # "1, 1" is one value
        if unique:
            choice.vary[spec.name] = unique
    if len(choice.vary) > MAX_VARIED_FIELDS:
        labels = ", ".join(spec.label for spec in form.specs if spec.name in choice.vary)
        choice.errors[None] = (
            f"At most {MAX_VARIED_FIELDS} fields may vary at once; you chose {len(choice.vary)} ({labels})."
        )
    slugs = list(dict.fromkeys(data.getlist(ALSO_RUN_ON)))
    # Read only when some are ticked: a plain Generate reads no other model.
    offered = {m.slug: m for m in offered_models(form.entry, entries)} if slugs else {}
    for slug in slugs:
        if slug == form.entry.slug:
            continue
        if slug not in offered:
            choice.errors[None] = f"“{slug}” is not a model you can also run this prompt on."
            continue
        choice.models.append(offered[slug])
    return choice


def batch_estimate(form: SchemaForm, choice: BatchChoice) -> Decimal | None:
    """What the batch costs: each cell priced as its task will be (the form's priced values with
    the cell's in place, for each model the fields it has), summed; None when a cell has no price."""
    base = form.pricing_input()
    if base is None:
        return None
    total = Decimal(0)
    for model in [form.entry, *choice.models]:
        properties = model.input_schema.get("properties") or {}
        for values in product(*choice.vary.values()):
            data = {name: value for name, value in base.items() if name in properties}
            data.update(zip(choice.vary, values, strict=True))
            try:
                total += estimate_cost(model, data)
            except (TypeError, ValueError, ArithmeticError):
                return None
    return total


def vary_controls(form: SchemaForm, data, models: list[CatalogEntry]) -> dict[str, dict]:
    """Per variable field, what its Vary control shows: its options (ticked as `data` has them) or
    its comma list; beside, "Also run on"'s models."""
    data = data if data is not None else {}
    getlist = data.getlist if hasattr(data, "getlist") else (lambda name: [])
    controls = {}
    for spec in form.specs:
        if spec.kind not in VARIABLE_KINDS:
            continue
        raw = getlist(vary_field(spec.name))
        control: dict[str, Any] = {"name": vary_field(spec.name), "kind": spec.kind, "label": spec.label}
        if spec.kind == "choice":
            control["options"] = [(str(v), str(v) in raw) for v in spec.enum or ()]
        elif spec.kind == "boolean":
            control["both"] = "both" in raw
        else:
            control["text"] = ", ".join(raw)
        control["open"] = any(value.strip() for value in raw)
        controls[spec.name] = control
    return controls


def limits() -> dict:
    return {"max_runs": settings.PLAYGROUND_MAX_BATCH_TASKS, "max_varied": MAX_VARIED_FIELDS}
