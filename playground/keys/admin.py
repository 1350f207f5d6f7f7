from django.contrib import admin

from .models import ApiKey, UpstreamCredential


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "user", "created_at", "last_used_at", "disabled_at", "deleted_at"]
    list_filter = ["disabled_at", "deleted_at"]
    search_fields = ["prefix", "name", "user__username"]
    readonly_fields = ["prefix", "secret_hash", "created_at", "last_used_at", "last_used_ip"]


@admin.register(UpstreamCredential)
class UpstreamCredentialAdmin(admin.ModelAdmin):
    """Read-only view of stored upstream keys: the ciphertext is never shown, only the last 4."""

    list_display = ["__str__", "user", "created_at", "last_used_at", "failing_since", "last_error"]
    search_fields = ["user__username", "label"]
    fields = ["user", "label", "last4", "created_at", "last_used_at", "failing_since", "last_error"]
    readonly_fields = ["user", "last4", "created_at", "last_used_at", "failing_since", "last_error"]

    def has_add_permission(self, request):
        return False  # keys are stored with `manage.py set_upstream_key`, which encrypts them
