"""What the teams commands share."""

import re

from django.core.management.base import CommandError

from playground.teams.models import Team

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,49}$")


def team_named(slug: str) -> Team:
    team = Team.objects.filter(slug=slug).first()
    if team is None:
        raise CommandError(f"No team named {slug!r}. Create one with `manage.py create_team`.")
    return team


def check_slug(slug: str) -> str:
    if not SLUG.fullmatch(slug):
        raise CommandError("SLUG must be 1 to 50 lowercase letters, digits and dashes, e.g. design-team.")
    return slug
