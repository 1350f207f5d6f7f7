from django.core.management.base import BaseCommand, CommandError

from playground.keys.management.users import user_named
from playground.teams.management.names import team_named
from playground.teams.services import TeamError, remove_member


class Command(BaseCommand):
    help = (
        "Take USERNAME out of the team SLUG: from their next request they reach none of its tasks, "
        "and the keys they hold for it stop working. Their tasks stay the team's."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("username")

    def handle(self, *args, slug: str, username: str, **options):
        team = team_named(slug)
        user = user_named(username, "")
        try:
            remove_member(team, user)
        except TeamError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"{user.get_username()} is no longer in {team.slug}.")
