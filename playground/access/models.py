from django.db import models
from django.utils import timezone


class SignInFailure(models.Model):
    """A sign-in attempt that has not succeeded: one row per attempt, written before the password
    is checked and deleted if it turns out right, so concurrent guesses are counted too. Counted
    per (username, client address) for the lockout (see `signin`); rows older than the lockout
    window are deleted as new attempts come."""

    username = models.CharField(max_length=150)
    source = models.CharField(max_length=64, help_text="The client address (IPv6: its /64).")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["username", "source", "created_at"], name="signin_failure_pair")]

    def __str__(self) -> str:
        return f"{self.username} from {self.source}"
