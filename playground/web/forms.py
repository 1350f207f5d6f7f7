from django.contrib.auth.forms import UserCreationForm

from playground.access.signin import ThrottledSignUp


class FirstAccountForm(ThrottledSignUp, UserCreationForm):
    """The administrator account, created from the sign-in page when no account exists yet."""


class SignUpForm(ThrottledSignUp, UserCreationForm):
    """Self-service accounts (PLAYGROUND_SIGNUP, on by default for local use), rate-limited per
    client address (PLAYGROUND_SIGNUP_RATE_LIMIT)."""
