from django.contrib import admin

from .models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "user", "created_at", "last_used_at", "disabled_at", "deleted_at"]
    list_filter = ["disabled_at", "deleted_at"]
    search_fields = ["prefix", "name", "user__username"]
    readonly_fields = ["prefix", "secret_hash", "created_at", "last_used_at", "last_used_ip"]
