from django.core.management.base import BaseCommand

from playground.catalog.loading import load_builtin_catalog


class Command(BaseCommand):
    help = "Import every catalog model shipped in playground/catalog/entries (safe to repeat)."

    def handle(self, *args, **options):
        entries = load_builtin_catalog()
        self.stdout.write(f"Catalog: {len(entries)} models ({', '.join(e.slug for e in entries)})")
