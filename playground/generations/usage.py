"""Spend and task counts over a period, per key, per model and per day: aggregates over tasks
(no counter is written per request)."""

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.formats import date_format

from .models import Status, Task

SPEND = Sum(Coalesce("cost_actual", "cost_estimate"))


@dataclass(frozen=True)
class UsageRow:
    label: str  # stable: a day, a key, a model's slug (the CSV's label)
    tasks: int
    succeeded: int
    spend: Decimal
    title: str = ""  # what people read, where it differs from the label (a model's title)


@dataclass(frozen=True)
class Usage:
    start: date
    days: list[UsageRow]  # one per day, oldest first, empty days included
    by_key: list[UsageRow]
    by_model: list[UsageRow]
    by_member: list[UsageRow] = field(default_factory=list)  # a team's: who ran them

    @property
    def total(self) -> UsageRow:
        return UsageRow(
            "total",
            sum(d.tasks for d in self.days),
            sum(d.succeeded for d in self.days),
            sum((d.spend for d in self.days), Decimal(0)),
        )


def _rows(query, fields: list[str], label, title=lambda group: "") -> list[UsageRow]:
    grouped = (
        query.values(*fields)
        .annotate(tasks=Count("id"), succeeded=Count("id", filter=Q(status=Status.SUCCEEDED)), spend=SPEND)
        .order_by(*fields)
    )
    return [
        UsageRow(label(g), g["tasks"], g["succeeded"], g["spend"] or Decimal(0), title(g)) for g in grouped
    ]


def _key_label(group: dict) -> str:
    if group["api_key__prefix"]:
        name = group["api_key__name"]
        return f"{name} ({group['api_key__prefix']}…)" if name else f"{group['api_key__prefix']}…"
    if group["demo_pass"]:  # passes may share a name: each is its own row, told apart by its end
        ends = date_format(timezone.localtime(group["demo_pass__expires_at"]), "j M Y")
        return f"demo pass: {group['demo_pass__name']} (until {ends})"
    return "browser" if group["source"] == "web" else group["source"]


def usage_for(scope: Q, days: int = 30, *, per_member: bool = False) -> Usage:
    """The usage of the tasks in `scope` (a caller's `task_scope()`: one workspace) over the last
    `days` days; in a team's, also per member (`per_member`)."""
    start = timezone.localdate() - timedelta(days=days - 1)
    tasks = Task.objects.filter(scope, created_at__date__gte=start)
    daily = _rows(tasks.annotate(day=TruncDate("created_at")), ["day"], lambda g: g["day"].isoformat())
    per_day = {row.label: row for row in daily}
    day_rows = []
    for offset in range(days):
        day = (start + timedelta(days=offset)).isoformat()
        day_rows.append(per_day.get(day, UsageRow(day, 0, 0, Decimal(0))))
    by_key = _rows(
        tasks,
        [
            "api_key__prefix",
            "api_key__name",
            "demo_pass",
            "demo_pass__name",
            "demo_pass__expires_at",
            "source",
        ],
        _key_label,
    )
    by_model = _rows(
        tasks, ["model__slug", "model__title"], lambda g: g["model__slug"], lambda g: g["model__title"]
    )
    by_member = _rows(tasks, ["owner__username"], lambda g: g["owner__username"]) if per_member else []
    return Usage(start=start, days=day_rows, by_key=by_key, by_model=by_model, by_member=by_member)
