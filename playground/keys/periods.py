"""When a budget's period started: calendar days, weeks (from Monday) and months in TIME_ZONE, so
a monthly budget starts again at local midnight on the 1st, by itself, with nothing to reset."""

from datetime import datetime, time, timedelta

from django.utils import timezone

from .models import BudgetPeriod

ADJECTIVE = {BudgetPeriod.DAY: "daily", BudgetPeriod.WEEK: "weekly", BudgetPeriod.MONTH: "monthly"}


def period_start(period: str, now: datetime | None = None) -> datetime | None:
    """The start of the current `period` (a BudgetPeriod value), aware; None for "" (all time)."""
    if not period:
        return None
    local = timezone.localtime(now or timezone.now())
    day = local.date()
    if period == BudgetPeriod.WEEK:
        day -= timedelta(days=day.weekday())
    elif period == BudgetPeriod.MONTH:
        day = day.replace(day=1)
    elif period != BudgetPeriod.DAY:
        raise ValueError(f"No such budget period: {period!r}")
    return timezone.make_aware(datetime.combine(day, time.min))


def budget_name(whose: str, period: str) -> str:
    """ "the key's monthly budget", "the key's budget" (all time), "your weekly budget"."""
    return f"{whose} {ADJECTIVE[period]} budget" if period else f"{whose} budget"
