from django.core.management.base import BaseCommand, CommandError

from playground.keys.credentials import rotate_upstream_keys


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored upstream key under the first PLAYGROUND_FERNET_KEYS key (or the key "
        "derived from SECRET_KEY). Run after adding a new key, before dropping the old one."
    )

    def handle(self, *args, **options):
        rotated, unreadable = rotate_upstream_keys()
        self.stdout.write(f"Re-encrypted {rotated} upstream key(s).")
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} key(s) could not be decrypted with any configured key "
                f"(credential ids {', '.join(map(str, unreadable))}); they were left as they are."
            )
