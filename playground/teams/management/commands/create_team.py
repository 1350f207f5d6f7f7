from django.core.management.base import BaseCommand, CommandError

from playground.catalog.text import text_problem
from playground.keys.management.commands.issue_key import budget_amount
from playground.keys.management.users import user_named
from playground.keys.models import BudgetPeriod
from playground.teams.management.names import check_slug
from playground.teams.models import Team
from playground.teams.services import TeamError, create_team


class Command(BaseCommand):
    help = "Create a team (a shared workspace) with USERNAME as its owner, optionally with a budget."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the team's short name: lowercase letters, digits and dashes")
        parser.add_argument("--owner", required=True, metavar="USERNAME")
        parser.add_argument("--name", default="", help="what people read (default: the slug)")
        parser.add_argument(
            "--budget", metavar="AMOUNT", help="the most the whole team may spend, in dollars"
        )
        parser.add_argument(
            "--period", choices=BudgetPeriod.values, default="", help="the budget starts again"
        )

    def handle(self, *args, slug: str, owner: str, name: str, budget, period: str, **options):
        check_slug(slug)
        if len(name) > Team._meta.get_field("name").max_length or text_problem(name):
            raise CommandError("--name must be at most 100 characters, none of them a control character.")
        user = user_named(owner, "Create one with `manage.py createsuperuser`.")
        amount = budget_amount(budget) if budget is not None else None
        if period and amount is None:
            raise CommandError("--period needs a --budget to start again.")
        try:
            team = create_team(slug, user, name=name, budget=amount, budget_period=period)
        except TeamError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Created team {team.slug} with {user.get_username()} as its owner.")
