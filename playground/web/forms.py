from django.contrib.auth.forms import UserCreationForm


class FirstAccountForm(UserCreationForm):
    """The administrator account, created from the sign-in page when no account exists yet."""


class SignUpForm(UserCreationForm):
    """Self-service accounts (PLAYGROUND_SIGNUP, on by default for local use)."""
