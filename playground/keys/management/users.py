"""What the keys commands share."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError


def user_named(username: str, hint: str = ""):
    """The user called `username`, or a CommandError saying there is none (and `hint`)."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user named {username!r}.{' ' + hint if hint else ''}")
    return user
