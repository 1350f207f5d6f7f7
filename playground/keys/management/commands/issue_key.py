from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from playground.keys.management.users import user_named
from playground.keys.services import expiry_through, issue_key


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


class Command(BaseCommand):
    help = (
        "Issue an API key for USERNAME and print only the secret (shown this once), optionally with a "
        "spend budget and a last day."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="a label for the key, e.g. the app using it")
        parser.add_argument(
            "--budget", metavar="AMOUNT", help="spend limit in dollars; tasks over it get 402 budget_exceeded"
        )
        parser.add_argument(
            "--expires", metavar="YYYY-MM-DD", help="the last day the key works (through that whole day)"
        )

    def handle(self, *args, username: str, name: str, budget: str | None, expires: str | None, **options):
        user = user_named(username, "Create one with `manage.py createsuperuser`.")
        amount = budget_amount(budget) if budget is not None else None
        expires_at = expiry_through(expiry_day(expires)) if expires is not None else None
        self.stdout.write(issue_key(user, name=name, expires_at=expires_at, budget=amount).secret)
