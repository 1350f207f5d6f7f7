"""Throttling of every door into an account: sign-in (ours and Django admin's) and sign-up.

Sign-in throttling harms only the attacker.

Two rules, both on the client's address as `addresses.client_address` finds it:

- **Lockout of the pair (username, address).** After PLAYGROUND_LOGIN_MAX_FAILURES failed sign-ins
  for one username from one address within PLAYGROUND_LOGIN_LOCKOUT_SECONDS, that username is
  refused from that address until the oldest of those failures leaves the window. The same
  username from any other address, and other usernames from this one, are not affected, so
  guessing a person's password never locks that person out.
- **Rate limit per address, across usernames.** PLAYGROUND_SIGNIN_RATE_LIMIT attempts, failed or
  not, from one address (IPv6: one /64); trying many usernames from one place is slowed down too.

A refused attempt never reaches the password check. Any sign-in form gets both rules by mixing in
`ThrottledSignIn`: ours (`SignInForm`) and Django admin's (`AdminSignInForm`).

Sign-up (and the first account's form) is rate-limited per address: PLAYGROUND_SIGNUP_RATE_LIMIT
attempts, successful or not, so nobody mints accounts in bulk or probes which usernames exist.
There is no password reset (no e-mail flow): a forgotten password is reset by an administrator.
"""

import math
import unicodedata
from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest
from django.utils import timezone

from .addresses import address_block, client_address
from .models import SignInFailure
from .ratelimit import Limit, over_limit


class TooManyAttempts(Exception):
    """Too many attempts at one door: `seconds` until the next one may be made."""

    door = "sign-in"

    def __init__(self, seconds: float) -> None:
        self.seconds = max(1, math.ceil(seconds))
        super().__init__(self.message)

    @property
    def message(self) -> str:
        minutes = math.ceil(self.seconds / 60)
        return f"Too many {self.door} attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}."


class SignInRefused(TooManyAttempts):
    door = "sign-in"


class SignUpRefused(TooManyAttempts):
    door = "sign-up"


def normalize_username(username: str) -> str:
    """One spelling per name, so `Alice` and `alice ` count as the same username; what is not
    printable (NUL, a lone surrogate: the form refuses such a name anyway) is left out, so every
    attempt is counted and stored as plain text."""
    printable = "".join(filter(str.isprintable, username))
    return unicodedata.normalize("NFKC", printable).strip().casefold()[:150]


def admit_sign_in(request: HttpRequest, username: str) -> None:
    """Call before checking a password. Raises SignInRefused when either rule refuses; otherwise
    the attempt counts as a failure from now on, until a successful sign-in of the same request
    forgets the pair's failures (`user_logged_in`)."""
    source = address_block(client_address(request))
    wait = over_limit(f"signin:{source}", Limit.parse(settings.PLAYGROUND_SIGNIN_RATE_LIMIT))
    if wait is not None:
        raise SignInRefused(wait)
    allowed = settings.PLAYGROUND_LOGIN_MAX_FAILURES
    if allowed <= 0:
        return
    username = normalize_username(username)
    now = timezone.now()
    since = now - timedelta(seconds=settings.PLAYGROUND_LOGIN_LOCKOUT_SECONDS)
    SignInFailure.objects.filter(created_at__lt=since).delete()
    # Counted before the password is checked, so guesses sent at the same moment all see each other.
    attempt = SignInFailure.objects.create(username=username, source=source, created_at=now)
    earlier = list(
        SignInFailure.objects.filter(username=username, source=source, created_at__gte=since)
        .exclude(pk=attempt.pk)
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:allowed]
    )
    if len(earlier) >= allowed:
        attempt.delete()  # a refused attempt does not extend the lockout
        raise SignInRefused((earlier[-1] - since).total_seconds())
    request.sign_in_pair = (username, source)


@receiver(user_logged_in)
def forget_failures_after_success(sender, request: HttpRequest | None = None, **kwargs) -> None:
    pair = getattr(request, "sign_in_pair", None)
    if pair is not None:
        SignInFailure.objects.filter(username=pair[0], source=pair[1]).delete()


def admit_sign_up(request: HttpRequest) -> None:
    """Call for every sign-up attempt. Raises SignUpRefused past PLAYGROUND_SIGNUP_RATE_LIMIT
    attempts from the client's address (IPv6: its /64)."""
    source = address_block(client_address(request))
    wait = over_limit(f"signup:{source}", Limit.parse(settings.PLAYGROUND_SIGNUP_RATE_LIMIT))
    if wait is not None:
        raise SignUpRefused(wait)


def refuse(request: HttpRequest, refused: TooManyAttempts) -> forms.ValidationError:
    """The form error for a throttled attempt; `request.too_many_attempts` makes
    SignInThrottleMiddleware answer 429 with Retry-After (the page re-shows the form)."""
    request.too_many_attempts = refused
    return forms.ValidationError(refused.message, code="too_many_attempts")


class ThrottledSignIn:
    """For an AuthenticationForm: both rules before the password is checked; a refusal is the
    form's error, answered 429."""

    request: HttpRequest

    def clean(self):
        try:
            admit_sign_in(self.request, self.data.get("username", ""))
        except SignInRefused as refused:
            raise refuse(self.request, refused) from None
        return super().clean()


class ThrottledSignUp:
    """For a UserCreationForm made with `request=`: every bound attempt counts against the
    address's sign-up limit; a refusal is the form's error, answered 429, and nothing is created."""

    def __init__(self, *args, request: HttpRequest, **kwargs) -> None:
        self.request = request
        super().__init__(*args, **kwargs)

    def clean(self):
        try:
            admit_sign_up(self.request)
        except SignUpRefused as refused:
            raise refuse(self.request, refused) from None
        return super().clean()


class SignInForm(ThrottledSignIn, AuthenticationForm):
    pass


class AdminSignInForm(ThrottledSignIn, AdminAuthenticationForm):
    pass
