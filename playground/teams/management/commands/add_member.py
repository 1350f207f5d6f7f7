from django.core.management.base import BaseCommand, CommandError

from playground.keys.management.users import user_named
from playground.teams.management.names import team_named
from playground.teams.models import Role
from playground.teams.services import TeamError, add_member


class Command(BaseCommand):
    help = "Add USERNAME to the team SLUG (or change their role in it)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("username")
        parser.add_argument("--role", choices=Role.values, default=Role.MEMBER)

    def handle(self, *args, slug: str, username: str, role: str, **options):
        team = team_named(slug)
        user = user_named(username, "Create one with `manage.py createsuperuser`.")
        try:
            membership = add_member(team, user, role)
        except TeamError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{user.get_username()} is {membership.role} of {team.slug}.")
