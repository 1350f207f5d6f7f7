"""Public share pages of finished tasks: one rule for the API and the browser.

A task is shared by a `Share` row (an unguessable token); unsharing deletes the row, so the page
and its files stop answering at once. Who may share is the caller's business (`Caller.may_share`):
the views first find the task within the caller's scope, then call here.
"""

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse

from .models import Share, Status, Task
from .outputs import public_base


class NotShareable(Exception):
    """Only a task that succeeded has outputs to show."""


@dataclass(frozen=True)
class Shared:
    share: Share
    created: bool


def share_task(task: Task, *, show_parameters: bool | None = None) -> Shared:
    """Share `task` (one that succeeded), or return its share as it is: sharing twice is one page,
    at one URL. `show_parameters` given changes what an existing page shows; a new page shows
    them unless it is False."""
    if task.status != Status.SUCCEEDED:
        raise NotShareable(f"Only a task that succeeded can be shared; this one is {task.status}.")
    share = Share.objects.filter(task_id=task.pk).first()
    created = share is None
    if created:
        try:
            with transaction.atomic():
                share = Share.objects.create(task_id=task.pk, show_parameters=show_parameters is not False)
        except IntegrityError:  # shared at the same moment by another request: that one counts
            share, created = Share.objects.get(task_id=task.pk), False
    if not created and show_parameters is not None and share.show_parameters != show_parameters:
        share.show_parameters = show_parameters
        share.save(update_fields=["show_parameters"])
    return Shared(share, created)


def unshare_task(task: Task) -> bool:
    """End `task`'s public page and its files' URLs at once. True if it was shared."""
    deleted, _ = Share.objects.filter(task_id=task.pk).delete()
    return bool(deleted)


def unshare_all(tasks) -> int:
    """End the public pages of every task in `tasks` (a queryset) at once: how many there were."""
    deleted, _ = Share.objects.filter(task__in=tasks).delete()
    return deleted


def shared_task(token: str) -> Share | None:
    """The share (with its task and model) that `token` names, or None: unknown, unshared, or
    not a token at all (checked before any query)."""
    if not 16 <= len(token) <= 64:
        return None
    return (
        Share.objects.select_related("task__model").filter(token=token, task__status=Status.SUCCEEDED).first()
    )


def share_url(request: HttpRequest | None, share: Share) -> str:
    """The absolute URL of the share page (from PLAYGROUND_PUBLIC_URL, else the request's host)."""
    return public_base(request) + reverse("share", args=[share.token])


def share_file_url(request: HttpRequest | None, share: Share, name: str) -> str:
    """An output file as the share page serves it: reachable exactly as long as the share is."""
    return public_base(request) + reverse("share-file", args=[share.token, name])
