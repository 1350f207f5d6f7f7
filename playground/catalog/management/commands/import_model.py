from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from playground.catalog.loading import CatalogError, import_entry, read_entry_file


class Command(BaseCommand):
    help = "Add or update one catalog model from its JSON file (schema checked as JSON Schema)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="a catalog entry JSON file")

    def handle(self, *args, file: Path, **options):
        try:
            entry, created = import_entry(read_entry_file(file))
        except CatalogError as exc:
            raise CommandError(f"{file}: {exc}") from exc
        verb = "Added" if created else "Updated"
        self.stdout.write(
            f"{verb} {entry.slug} ({entry.kind}, {len(entry.input_schema['properties'])} fields)"
        )
