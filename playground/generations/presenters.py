"""A task as clients see it: one shape for the API's answers and for webhook bodies, so the two can
never drift apart."""

from django.http import HttpRequest

from .models import Status, Task
from .outputs import present_output


def _number(value) -> float | None:
    return float(value) if value is not None else None


def task_body(request: HttpRequest | None, task: Task) -> dict:
    """The task as `GET /api/v1/tasks/{id}` returns it. Output URLs are absolute when there is a
    request or PLAYGROUND_PUBLIC_URL (a webhook has no request: set it for absolute URLs there)."""
    return {
        "request_id": task.request_id,
        "task_id": task.pk,
        "status": task.status,
        "model": task.model.slug,
        "cost_estimate": _number(task.cost_estimate),
        "cost_actual": _number(task.cost_actual),
        "output": present_output(request, task.pk, task.output) if task.status == Status.SUCCEEDED else None,
        "error": task.error,
        "created_at": task.created_at.isoformat(),
        "started_at": task.started_at.isoformat() if task.started_at else None,
        "finished_at": task.finished_at.isoformat() if task.finished_at else None,
    }
