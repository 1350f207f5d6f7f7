"""The background job: run one task on its engine and record the outcome.

Runs in the worker (`manage.py db_worker`). The engine gets plain data and a context; files it
produces go to the default storage under `outputs/<task id>/`.
"""

import logging
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.tasks import task

from playground.catalog.pricing import estimate_cost
from playground.engines.base import EngineError, EngineJob, EngineStopped, get_engine

from .models import Status, Task
from .services import record_message, transition

logger = logging.getLogger(__name__)


class TaskRunContext:
    """What an engine may do while it runs: report progress, check for cancel, save outputs."""

    def __init__(self, task: Task):
        self.task = task
        self.outputs: list[dict[str, Any]] = []

    def report(self, message: str) -> None:
        record_message(self.task.pk, Status.PROCESSING, message)

    def should_stop(self) -> bool:
        return (
            Task.objects.filter(pk=self.task.pk).values_list("status", flat=True).first() != Status.PROCESSING
        )

    def save_upstream_id(self, upstream_id: str) -> None:
        """Persist the upstream task id before waiting on it, so a retry resumes that task."""
        Task.objects.filter(pk=self.task.pk).update(upstream_id=upstream_id)
        self.task.upstream_id = upstream_id

    def save_output(self, name: str, content: bytes, content_type: str, **meta: Any) -> None:
        path = default_storage.save(f"outputs/{self.task.pk}/{name}", ContentFile(content))
        self.outputs.append({"file": path, "content_type": content_type, "bytes": len(content), **meta})


def job_for(task: Task) -> EngineJob:
    entry = task.model
    return EngineJob(
        task_id=task.pk,
        owner_id=task.owner_id,
        model_slug=entry.slug,
        kind=entry.kind,
        output_key=entry.output_key,
        roles=dict(entry.roles),
        input_schema=entry.input_schema,
        input=task.input,
        upstream_id=task.upstream_id,
        attempt=task.attempts,
    )


@task()
def run_task(task_id: str) -> str:
    """Run the task once; returns its final status. A task already taken or cancelled is skipped."""
    if not transition(task_id, Status.PROCESSING, message="Started."):
        return "skipped"
    task = Task.objects.select_related("model").get(pk=task_id)
    context = TaskRunContext(task)
    try:
        result = get_engine(task.engine).run(job_for(task), context)
    except EngineStopped:
        return Status.CANCELLED
    except EngineError as exc:
        transition(
            task_id,
            Status.FAILED,
            message=exc.message,
            error={"code": exc.code, "message": exc.message},
            cost_actual=0,
        )
        return Status.FAILED
    except Exception:
        logger.exception("engine %s crashed on %s", task.engine, task_id)
        message = "The engine failed unexpectedly; nothing was charged."
        transition(
            task_id,
            Status.FAILED,
            message=message,
            error={"code": "engine_crashed", "message": message},
            cost_actual=0,
        )
        return Status.FAILED
    cost = result.cost_actual
    if cost is None:
        cost = estimate_cost(task.model, task.input, seconds=result.billed_seconds)
    finished = transition(
        task_id,
        Status.SUCCEEDED,
        message="Finished.",
        output={task.model.output_key: context.outputs},
        cost_actual=cost,
    )
    return Status.SUCCEEDED if finished else Status.CANCELLED
