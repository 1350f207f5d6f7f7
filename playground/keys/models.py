from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


def cascade_unless_team(collector, field, sub_objs, using):
    """`on_delete` for an account's rows that may be a team's (tasks it ran, the team's keys,
    passes, MindVideo key, webhook secret and audit entries it made or is filed under): its own
    rows go with it (CASCADE); a team's are the team's record and refuse the deletion instead
    (ProtectedError, which Django's admin shows as such), as do memberships (PROTECT). An account
    that worked in a team is deactivated (`is_active`), not deleted."""
    kept = [row for row in sub_objs if getattr(row, "team_id", None) is not None]
    if kept:
        name = field.remote_field.model.__name__
        raise models.ProtectedError(
            f"It holds rows of a team ({len(kept)} {name}): deactivate the account instead.", kept
        )
    models.CASCADE(collector, field, sub_objs, using)


class BudgetPeriod(models.TextChoices):
    """How often a budget starts again: calendar days, weeks (from Monday) and months in TIME_ZONE."""

    DAY = "day", "per day"
    WEEK = "week", "per week"
    MONTH = "month", "per month"


class ApiKey(models.Model):
    """A key we issue for `/api/v1`. Only its SHA-256 is stored; `prefix` finds the row.

    Deleting is soft (`deleted_at`) so a client using a deleted key is told so (401 `key_deleted`)
    and the key's tasks keep their history.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=cascade_unless_team, related_name="api_keys")
    # A key issued for a team acts for it: its tasks are the team's, and it sees all of the team's.
    team = models.ForeignKey(
        "teams.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="api_keys"
    )
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=32, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    budget = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, help_text="Spend limit; empty = none."
    )
    budget_period = models.CharField(
        max_length=5, choices=BudgetPeriod.choices, blank=True, help_text="Empty: the budget is for all time."
    )
    allowed_models = models.JSONField(default=list, blank=True, help_text="Slugs; empty = every model.")
    requests_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: the server's PLAYGROUND_API_RATE_LIMIT."
    )
    # After a roll, the secret before it works beside the new one until `previous_valid_until`.
    previous_prefix = models.CharField(max_length=32, unique=True, null=True, blank=True)
    previous_secret_hash = models.CharField(max_length=64, blank=True)
    previous_valid_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or 'unnamed'})"

    def allows_model(self, slug: str) -> bool:
        return not self.allowed_models or slug in self.allowed_models

    @property
    def previous_works_until(self):
        """When the secret this key was rolled from stops working, while it still works; else None."""
        until = self.previous_valid_until
        return until if self.previous_prefix and until and until > timezone.now() else None

    @property
    def status(self) -> str:
        if self.deleted_at:
            return "deleted"
        if self.disabled_at:
            return "disabled"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"


class UpstreamCredential(models.Model):
    """A user's key for the upstream platform (MindVideo), encrypted at rest with MultiFernet.

    Only `last4` is ever shown; `__str__` (and so `repr`) never contains the secret. One credential
    per person and one per team: storing a new key replaces the old one. See `keys.credentials`.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=cascade_unless_team, related_name="upstream_credentials"
    )
    # A team's key (stored by `user`, one of its admins) runs every member's tasks in the team;
    # null: `user`'s own key, for their personal workspace.
    team = models.ForeignKey(
        "teams.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="upstream_credentials"
    )
    label = models.CharField(max_length=100, blank=True)
    secret_encrypted = models.TextField()  # a Fernet token; see keys.credentials
    last4 = models.CharField(max_length=4)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=models.Q(team=None), name="one_upstream_credential_per_user"
            ),
            models.UniqueConstraint(
                fields=["team"],
                condition=models.Q(team__isnull=False),
                name="one_upstream_credential_per_team",
            ),
        ]

    def __str__(self) -> str:
        return f"upstream key …{self.last4}" + (f" ({self.label})" if self.label else "")


class WebhookSecret(models.Model):
    """A secret the webhooks of one owner's tasks are signed with (Standard Webhooks, `whsec_…`),
    encrypted at rest with the same MultiFernet as upstream keys.

    The owner's current secret has no `expires_at`; a rotated-out one keeps signing beside it until
    `expires_at` (the grace period). A team's secrets (`team`; `owner` the person who made one)
    sign its tasks' webhooks, whoever ran them; the others are `owner`'s own. Only `last4` is ever
    shown unasked; `__str__` never contains the secret. See `keys.webhook_secrets`.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=cascade_unless_team, related_name="webhook_secrets"
    )
    team = models.ForeignKey(
        "teams.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_secrets"
    )
    secret_encrypted = models.TextField()  # a Fernet token; see keys.credentials
    last4 = models.CharField(max_length=4)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner"],
                condition=Q(expires_at__isnull=True, team=None),
                name="one_current_webhook_secret",
            ),
            models.UniqueConstraint(
                fields=["team"],
                condition=Q(expires_at__isnull=True, team__isnull=False),
                name="one_current_team_webhook_secret",
            ),
        ]

    def __str__(self) -> str:
        return f"webhook secret …{self.last4}"


class DemoPass(models.Model):
    """A revocable, time-boxed link that lets guests use the playground for chosen models without
    an account, spending the owner's money up to `spend_cap`. The link carries `public_id`
    signed with SECRET_KEY (see `access.passes`), so it can be shown again; revoking or expiry
    refuses it on the guest's next request."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=cascade_unless_team, related_name="demo_passes"
    )
    # A team's pass (made by `owner`, one of its admins): its guests' tasks are the team's, on the
    # team's budget and MindVideo key, and its admins manage it. Null: `owner`'s own.
    team = models.ForeignKey(
        "teams.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="demo_passes"
    )
    name = models.CharField(max_length=100)
    public_id = models.CharField(max_length=32, unique=True)
    model_slugs = models.JSONField(default=list, help_text="Slugs the guest may use.")
    spend_cap = models.DecimalField(max_digits=12, decimal_places=4)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Whether its guests may make public share pages of their own results (off unless the owner
    # ticks it: a share page outlives the pass).
    allow_sharing = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name

    @property
    def status(self) -> str:
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "active"


class AuditEntry(models.Model):
    """One change to what an account has issued or stored, for its owner to review (and export):
    who did it, to what, from where. Written by the services that make the change (`keys.audit`)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=cascade_unless_team, related_name="audit_entries"
    )
    # A team's entry (its members, its keys): the team's log, not `owner`'s own.
    team = models.ForeignKey(
        "teams.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="audit_entries"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=40)  # e.g. "key.created", "key.rolled", "upstream_key.set"
    subject = models.CharField(max_length=200, blank=True)  # e.g. "key pg_live_AbC… (ci)"
    detail = models.CharField(max_length=500, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="audit_owner_recent")]

    def __str__(self) -> str:
        return f"{self.action} {self.subject}"
