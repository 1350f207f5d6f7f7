from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from playground.access.ratelimit import MOST_REQUESTS_PER_MINUTE, api_rpm_ceiling
from playground.keys.management.users import user_named
from playground.keys.models import BudgetPeriod
from playground.keys.services import expiry_through, issue_key
from playground.teams.management.names import team_named
from playground.teams.services import is_member


def budget_amount(text: str) -> Decimal:
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise CommandError(f"--budget must be an amount in dollars such as 12.50, not {text!r}.") from None
    if not amount.is_finite() or amount <= 0 or amount.as_tuple().exponent < -4 or amount >= 10**8:
        raise CommandError("--budget must be more than 0 and less than 100,000,000, with at most 4 decimals.")
    return amount


def expiry_day(text: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--expires must be a day written YYYY-MM-DD, not {text!r}.") from None
    if day <= timezone.localdate():
        raise CommandError("--expires must be a day after today.")
    return day


def model_slugs(text: str) -> list[str]:
    from playground.catalog.models import CatalogEntry

    slugs = [slug.strip() for slug in text.split(",") if slug.strip()]
    known = set(CatalogEntry.objects.filter(is_active=True, slug__in=slugs).values_list("slug", flat=True))
    if unknown := [slug for slug in slugs if slug not in known]:
        raise CommandError(f"--models: no such model {', '.join(unknown)} (see GET /api/v1/models).")
    if not slugs:
        raise CommandError("--models needs at least one model slug, e.g. --models flux-2-pro,wan2-7-r2v.")
    return slugs


def requests_a_minute(text: str) -> int:
    ceiling = api_rpm_ceiling()
    most = min(ceiling, MOST_REQUESTS_PER_MINUTE) if ceiling is not None else MOST_REQUESTS_PER_MINUTE
    # ASCII digits only: "²" is a digit to str.isdigit() and no number to int().
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= most:
        why = ", the server's limit" if most == ceiling else ""
        raise CommandError(
            f"--rpm must be a whole number of requests a minute, at least 1 and at most {most}{why}."
        )
    return int(text)


class Command(BaseCommand):
    help = (
        "Issue an API key for USERNAME and print only the secret (shown this once), optionally with a "
        "spend budget (for all time or per day, week or month), the models it may use, a rate limit and "
        "a last day."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="a label for the key, e.g. the app using it")
        parser.add_argument(
            "--budget", metavar="AMOUNT", help="spend limit in dollars; tasks over it get 402 budget_exceeded"
        )
        parser.add_argument(
            "--period",
            choices=BudgetPeriod.values,
            default="",
            help="the budget starts again each calendar day, week (Monday) or month (TIME_ZONE); "
            "without it the budget is for all time",
        )
        parser.add_argument(
            "--models",
            metavar="A,B",
            help="the only model slugs the key may use (others: 403 model_not_allowed)",
        )
        parser.add_argument("--rpm", metavar="N", help="requests a minute (over it: 429 with Retry-After)")
        parser.add_argument(
            "--expires", metavar="YYYY-MM-DD", help="the last day the key works (through that whole day)"
        )
        parser.add_argument(
            "--team",
            metavar="SLUG",
            help="the key acts for this team (USERNAME must be in it): its tasks are the team's, and it "
            "sees all of the team's tasks",
        )

    def handle(
        self, *args, username: str, name: str, budget, period: str, models, rpm, expires, team, **options
    ):
        user = user_named(username, "Create one with `manage.py createsuperuser`.")
        if team is not None:
            team = team_named(team)
            if not is_member(team.pk, user.pk):
                raise CommandError(
                    f"{username} is not in the team {team.slug}: add them with `manage.py add_member`."
                )
        amount = budget_amount(budget) if budget is not None else None
        if period and amount is None:
            raise CommandError("--period needs a --budget to start again.")
        expires_at = expiry_through(expiry_day(expires)) if expires is not None else None
        issued = issue_key(
            user,
            name=name,
            expires_at=expires_at,
            budget=amount,
            budget_period=period,
            team=team,
            allowed_models=model_slugs(models) if models is not None else (),
            requests_per_minute=requests_a_minute(rpm) if rpm is not None else None,
        )
        self.stdout.write(issued.secret)
