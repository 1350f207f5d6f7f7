"""Print (or rotate) a user's webhook signing secret, for setting up a receiver from a shell."""

from django.core.management.base import BaseCommand, CommandError

from playground.keys.management.users import user_named
from playground.keys.webhook_secrets import (
    WebhookSecretUnreadable,
    current_webhook_secret,
    rotate_webhook_secret,
)


class Command(BaseCommand):
    help = (
        "Print USERNAME's webhook signing secret (whsec_…; made on first use), the one their webhooks "
        "are signed with. --rotate makes a new one first; the old one keeps signing for "
        "PLAYGROUND_WEBHOOK_SECRET_GRACE seconds. The Keys page shows and rotates it too."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--rotate", action="store_true", help="make a new secret and print it")

    def handle(self, *args, username: str, rotate: bool, **options):
        user = user_named(username)
        if rotate:
            self.stdout.write(rotate_webhook_secret(user.pk))
            return
        try:
            self.stdout.write(current_webhook_secret(user.pk))
        except WebhookSecretUnreadable as exc:
            raise CommandError(f"{exc} (or run with --rotate)") from None
