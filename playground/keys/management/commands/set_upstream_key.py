import getpass
import sys

from django.core.management.base import BaseCommand, CommandError

from playground.keys.credentials import store_upstream_key
from playground.keys.management.users import user_named


class Command(BaseCommand):
    help = (
        "Store USERNAME's MindVideo key, encrypted. The key is read from standard input (prompted "
        "for on a terminal), never from the command line, where `ps` and shell history would show it."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--label", default="", help="a label for the key, e.g. the account it bills")

    def handle(self, *args, username: str, label: str, **options):
        user = user_named(username)
        stdin = options.get("stdin", sys.stdin)
        secret = (getpass.getpass("MindVideo key: ") if stdin.isatty() else stdin.readline()).strip()
        if not secret:
            raise CommandError("No key given: pipe it in, e.g. `manage.py set_upstream_key alice < key.txt`.")
        credential = store_upstream_key(user, secret, label=label)
        self.stdout.write(f"Stored key ending in {credential.last4}")
