"""A team is a workspace shared by its members. Every person also has a personal workspace, which
needs no row: what has no team (`team` null on tasks and keys) is personal, so every task and key
made before teams existed is in its owner's personal workspace as it stands, with nothing moved.
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from playground.keys.models import BudgetPeriod


class Role(models.TextChoices):
    """`owner`: everything, including deleting the team and handing it on; `admin`: members, keys,
    demo passes, the upstream key and budgets; `member`: generate, see and re-run the team's tasks."""

    OWNER = "owner", "owner"
    ADMIN = "admin", "admin"
    MEMBER = "member", "member"


MANAGERS = (Role.OWNER, Role.ADMIN)
# A team's slug: what the team commands take as an argument (so never a leading dash).
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]*$"


class Team(models.Model):
    slug = models.SlugField(
        max_length=50,
        unique=True,
        validators=[RegexValidator(SLUG_PATTERN, "Lowercase letters, digits and dashes.")],
    )
    name = models.CharField(max_length=100)
    budget = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    budget_period = models.CharField(max_length=5, choices=BudgetPeriod.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name or self.slug


class Membership(models.Model):
    """A person in a team, in a role, with an optional budget of their own within the team."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    # Someone in a team is taken out of it (their tasks stay its) before their account may go.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(max_length=6, choices=Role.choices, default=Role.MEMBER)
    budget = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    budget_period = models.CharField(max_length=5, choices=BudgetPeriod.choices, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["team", "user"]
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="one_membership_per_team")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"


class Invite(models.Model):
    """A single-use link into a team, in `role`, until `expires_at`: whoever opens it first, signed
    in or signing up through it, becomes a member. Only the token's SHA-256 is kept: the link is
    shown once, to the admin who made it, and a leaked database holds no working invite."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invites")
    role = models.CharField(max_length=6, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"invite to {self.team} as {self.role}"

    @property
    def is_open(self) -> bool:
        return self.used_at is None and self.revoked_at is None and self.expires_at > timezone.now()
