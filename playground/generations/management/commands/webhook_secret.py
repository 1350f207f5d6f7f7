"""Print the secret webhook signatures are made with, for receivers to verify them."""

from django.core.management.base import BaseCommand

from playground.generations.webhooks import webhook_secret


class Command(BaseCommand):
    help = (
        "Print the webhook signing secret (PLAYGROUND_WEBHOOK_SECRET, or the one derived from "
        "SECRET_KEY when it is unset). Receivers verify X-Playground-Signature with it."
    )

    def handle(self, *args, **options):
        self.stdout.write(webhook_secret())
