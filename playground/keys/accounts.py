"""Sign-in rate limiting: after repeated failures for one username or from one address, further
attempts are refused for a while, with a message saying so."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .models import LoginFailure


def lockout_remaining(username: str, ip: str | None) -> timedelta | None:
    """How long sign-in stays locked for this username or address, or None."""
    window = timedelta(seconds=settings.PLAYGROUND_LOGIN_LOCKOUT_SECONDS)
    since = timezone.now() - window
    who = Q(username=username.lower())
    if ip:
        who |= Q(ip=ip)
    failures = LoginFailure.objects.filter(who, created_at__gte=since).order_by("-created_at")
    recent = list(failures.values_list("created_at", flat=True)[: settings.PLAYGROUND_LOGIN_MAX_FAILURES])
    if len(recent) < settings.PLAYGROUND_LOGIN_MAX_FAILURES:
        return None
    return recent[-1] + window - timezone.now()


def record_login_failure(username: str, ip: str | None) -> None:
    LoginFailure.objects.create(username=username.lower()[:150], ip=ip)
    # Old rows only matter for the window; trim them as we go.
    cutoff = timezone.now() - timedelta(seconds=settings.PLAYGROUND_LOGIN_LOCKOUT_SECONDS * 4)
    LoginFailure.objects.filter(created_at__lt=cutoff).delete()


def clear_login_failures(username: str) -> None:
    LoginFailure.objects.filter(username=username.lower()).delete()
