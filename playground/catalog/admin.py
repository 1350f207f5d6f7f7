from django.contrib import admin

from .models import CatalogEntry


@admin.register(CatalogEntry)
class CatalogEntryAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "kind", "engine", "is_active", "updated_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["slug", "title"]
