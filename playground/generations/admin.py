from django.contrib import admin

from .models import Task, TaskEvent


class TaskEventInline(admin.TabularInline):
    model = TaskEvent
    extra = 0
    readonly_fields = ["created_at", "status", "message"]


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "owner", "model", "status", "engine", "cost_estimate", "cost_actual", "created_at"]
    list_filter = ["status", "engine", "model"]
    search_fields = ["id", "request_id", "owner__username"]
    readonly_fields = [f.name for f in Task._meta.fields]
    inlines = [TaskEventInline]
