from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiKey(models.Model):
    """A key we issue for `/api/v1`. Only its SHA-256 is stored; `prefix` finds the row.

    Deleting is soft (`deleted_at`) so a client using a deleted key is told so (401 `key_deleted`)
    and the key's tasks keep their history.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=32, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or 'unnamed'})"

    @property
    def status(self) -> str:
        if self.deleted_at:
            return "deleted"
        if self.disabled_at:
            return "disabled"
        if self.expires_at and self.expires_at <= timezone.now():
            return "expired"
        return "active"
