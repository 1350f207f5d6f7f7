from django.core.management.base import BaseCommand, CommandError

from playground.keys.credentials import rotate_upstream_keys
from playground.keys.webhook_secrets import reencrypt_webhook_secrets


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored upstream key and webhook signing secret under the first "
        "PLAYGROUND_FERNET_KEYS key (or the key derived from SECRET_KEY). Run after adding a new key, "
        "before dropping the old one."
    )

    def handle(self, *args, **options):
        rotated, unreadable = rotate_upstream_keys()
        self.stdout.write(f"Re-encrypted {rotated} upstream key(s).")
        secrets_rotated, secrets_unreadable = reencrypt_webhook_secrets()
        self.stdout.write(f"Re-encrypted {secrets_rotated} webhook secret(s).")
        problems = []
        if unreadable:
            problems.append(f"{len(unreadable)} key(s) (credential ids {', '.join(map(str, unreadable))})")
        if secrets_unreadable:
            ids = ", ".join(map(str, secrets_unreadable))
            problems.append(f"{len(secrets_unreadable)} webhook secret(s) (ids {ids})")
        if problems:
            raise CommandError(
                f"{' and '.join(problems)} could not be decrypted with any configured key; "
                "they were left as they are."
            )
