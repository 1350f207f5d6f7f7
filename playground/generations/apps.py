from django.apps import AppConfig


class GenerationsConfig(AppConfig):
    name = "playground.generations"
    label = "generations"

    def ready(self) -> None:
        # Connects the receivers of `lifecycle.task_ended` (a task's webhook is queued when it ends).
        from . import webhooks  # noqa: F401
