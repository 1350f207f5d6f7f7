"""The cost function: one rule for the estimate at submit and the charge when a task ends.

A pricing rule (the `pricing` key of a catalog entry) is
`{"unit": "image" | "second" | "task", "unit_price": p, "unit_price_by": {field: {value: p}},
"multipliers": {field: {value: factor}}}`; values are matched case-insensitively (`1K` = `1k`).
cost = unit price x count (n, sample_count, ...) x seconds (video) x multipliers, to 4 places.
"""

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .fields import fields_of
from .models import CatalogEntry

PLACES = Decimal("0.0001")
MAX_PRICE = Decimal("99999999.9999")  # the most a task's cost columns hold (12 digits, 4 places)


class NoPrice(ValueError):
    """Input that has no price: it would cost less than nothing, or more than the ledger holds
    (a count or a duration the schema should have bounded)."""


def _value(schema: dict, data: dict, field: str | None) -> Any:
    if not field:
        return None
    if field in data:
        return data[field]
    return schema.get("properties", {}).get(field, {}).get("default")


def _key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).lower()


def _lookup(table: dict, value: Any) -> Any:
    lowered = {_key(k): v for k, v in table.items()}
    return lowered.get(_key(value))


def max_duration(schema: dict, field: str) -> int:
    """The longest duration the schema allows: what an 'auto' (0) duration is estimated at."""
    spec = schema.get("properties", {}).get(field, {})
    if "enum" in spec:
        return max(spec["enum"])
    return int(spec.get("maximum", 0))


def billed_seconds(schema: dict, roles: dict, data: dict) -> int:
    field = roles.get("duration")
    seconds = _value(schema, data, field)
    if not seconds:  # 0 or absent = the model decides: estimate at the maximum
        seconds = max_duration(schema, field) if field else 0
    return int(seconds or 0)


def estimate_from_rule(
    pricing: dict, roles: dict, schema: dict, data: dict, *, seconds: int | None = None
) -> Decimal:
    price = Decimal(str(pricing.get("unit_price", 0)))
    for field, table in (pricing.get("unit_price_by") or {}).items():
        found = _lookup(table, _value(schema, data, field))
        if found is not None:
            price = Decimal(str(found))
    for field, table in (pricing.get("multipliers") or {}).items():
        factor = _lookup(table, _value(schema, data, field))
        if factor is not None:
            price *= Decimal(str(factor))
    count = _value(schema, data, roles.get("count")) or 1
    quantity = Decimal(int(count))
    unit = pricing.get("unit", "task")
    if unit == "second":
        quantity *= seconds if seconds is not None else billed_seconds(schema, roles, data)
    elif unit == "task":
        quantity = Decimal(1)
    return (price * quantity).quantize(PLACES, rounding=ROUND_HALF_UP)


def estimate_cost(entry: CatalogEntry, data: dict, *, seconds: int | None = None) -> Decimal:
    """What a task with input `data` costs; `seconds` overrides the billed video length. NoPrice
    for a cost below zero or past MAX_PRICE."""
    cost = estimate_from_rule(entry.pricing, entry.roles, entry.input_schema, data, seconds=seconds)
    if not 0 <= cost <= MAX_PRICE:
        raise NoPrice(f"This input comes to {cost}, which is no price: check the count and duration.")
    return cost


def priced_fields(entry: CatalogEntry) -> set[str]:
    """The input fields whose value changes what a task costs and that the form can price as they
    are typed or chosen (a choice, a number, a switch: see `fields.PRICED_KINDS`): the form
    re-prices on these only."""
    pricing, roles = entry.pricing, entry.roles
    names = {*(pricing.get("unit_price_by") or {}), *(pricing.get("multipliers") or {})}
    if pricing.get("unit", "task") != "task" and roles.get("count"):
        names.add(roles["count"])
    if pricing.get("unit") == "second" and roles.get("duration"):
        names.add(roles["duration"])
    return {field.name for field in fields_of(entry) if field.name in names and field.priced_kind}


def dollars(amount: Decimal) -> str:
    """$0.25, $0.0088: as many decimals as the amount needs."""
    return f"${amount.normalize():f}"
