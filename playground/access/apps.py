from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccessConfig(AppConfig):
    """Who is calling: the client's address, sign-in throttling and rate limits."""

    name = "playground.access"
    label = "access"

    def ready(self) -> None:
        from . import signin  # noqa: F401 (connects the sign-in receivers)

        post_migrate.connect(create_cache_tables, sender=self)


def create_cache_tables(using: str = "default", **kwargs) -> None:
    """`migrate` also creates the database cache's table (`createcachetable`; nothing if it exists),
    so the rate counters have a home after every deploy that only runs `migrate`. (Django sends
    post_migrate only to apps with a models module: keep access/models.py.)"""
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=0)
