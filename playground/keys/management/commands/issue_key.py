from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from playground.keys.services import issue_key


class Command(BaseCommand):
    help = "Issue an API key for USERNAME and print only the secret (shown this once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="a label for the key, e.g. the app using it")

    def handle(self, *args, username: str, name: str, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}. Create one with `manage.py createsuperuser`.")
        self.stdout.write(issue_key(user, name=name).secret)
