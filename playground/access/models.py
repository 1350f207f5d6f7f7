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


class RateCounter(models.Model):
    """The hits of one rate-limit scope in its current fixed window (`ratelimit.over_limit`): one
    row per scope, counted by conditional UPDATEs so concurrent hits on any process or host are
    each counted once. A row whose window has passed is reset by its scope's next hit, or deleted
    once it is old (`ends_at`)."""

    scope = models.CharField(max_length=255, primary_key=True)
    window = models.BigIntegerField()
    hits = models.PositiveIntegerField()
    ends_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.scope}: {self.hits} in window {self.window}"
