"""Webhooks: when a task with a `webhook_url` ends, POST its final state there, signed.

The delivery is queued by a receiver of `lifecycle.task_ended` (connected when the app is ready),
once the task's end has committed: the lifecycle does not know webhooks exist.

The body is exactly what `GET /api/v1/tasks/{id}` returns (`presenters.task_body`), signed the
Standard Webhooks way (https://www.standardwebhooks.com, with its `standardwebhooks` library) under
its workspace's secret (`keys.webhook_secrets`: a team task's is the team's, else its owner's):
`webhook-id` names the delivery and is the same on every attempt, `webhook-timestamp` is the
attempt's time, and `webhook-signature` carries one `v1,<signature>` per secret, space-separated:
during a rotation's grace period the new and the old secret both sign. A receiver verifies with
`standardwebhooks.Webhook(secret).verify(body, headers)`
(or any Standard Webhooks library), which also refuses a timestamp over 5 minutes off.

Delivery goes through the fetcher's address rules (no private targets unless allow-listed). A
failed attempt (no connection, a timeout, any answer but 2xx) is retried by the job re-enqueueing
itself `RETRY_DELAYS` later, up to `MAX_ATTEMPTS` in all; a target refused by the address rules, or
an owner's secret that cannot be decrypted, is not retried. Every attempt is recorded as a
TaskEvent message, so the task's events show it (never a secret).
"""

import json
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.dispatch import receiver
from django.tasks import task
from django.utils import timezone
from standardwebhooks import Webhook

from playground.engines.fetch import FetchError, post_json
from playground.keys.webhook_secrets import WebhookSecretUnreadable, signing_secrets

from .lifecycle import record_message, task_ended
from .models import Task
from .presenters import task_body

MAX_ATTEMPTS = 5
RETRY_DELAYS = (10, 60, 300, 1800)  # seconds before attempts 2, 3, 4 and 5
# The target itself is refused: retrying cannot help.
PERMANENT_FAILURES = frozenset(
    {"unsupported_url", "invalid_url", "forbidden_port", "forbidden_address", "too_many_redirects"}
)


def message_id(task_id: str) -> str:
    """The `webhook-id` of a task's end: a task ends once, so its id names the delivery, and every
    retry carries the same one (a receiver can skip a message it has already handled)."""
    return f"msg_{task_id}"


def signed_headers(msg_id: str, body: bytes, secrets: list[str], sent_at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for `body` sent at `sent_at`, signed with each of `secrets`."""
    payload = body.decode()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": " ".join(Webhook(secret).sign(msg_id, sent_at, payload) for secret in secrets),
    }


def _retry_later(task_id: str, attempt: int, delay: int) -> None:
    job = deliver_webhook
    if job.get_backend().supports_defer:
        job = job.using(run_after=timezone.now() + timedelta(seconds=delay))
    # A backend that cannot defer (the immediate backend of the tests) retries at once.
    job.enqueue(task_id, attempt)


def _post_signed(task_row: Task) -> int:
    """POST the task's body to its webhook_url, signed; returns the receiver's status code.
    Raises FetchError (not sent, or no answer) or WebhookSecretUnreadable (not sent)."""
    body = json.dumps(task_body(None, task_row, queue_position=None), separators=(",", ":")).encode()
    secrets = signing_secrets(task_row.owner_id, task_row.team_id)
    sent_at = datetime.now(UTC).replace(microsecond=0)
    headers = {
        **signed_headers(message_id(task_row.pk), body, secrets, sent_at),
        "User-Agent": "playground-webhooks/1",
    }
    return post_json(task_row.webhook_url, body, headers=headers, timeout=settings.PLAYGROUND_WEBHOOK_TIMEOUT)


@receiver(task_ended, dispatch_uid="playground.generations.webhooks.queue_delivery")
def queue_delivery(sender, task_id: str, **kwargs) -> None:
    """Queue the delivery of an ended task's webhook, if it has one (its end has committed)."""
    if Task.objects.filter(pk=task_id).exclude(webhook_url="").exists():
        deliver_webhook.enqueue(task_id)


@task()
def deliver_webhook(task_id: str, attempt: int = 1) -> str:
    """Make delivery attempt number `attempt`; returns delivered, retrying, failed or skipped."""
    task_row = Task.objects.select_related("model", "owner").filter(pk=task_id).first()
    if task_row is None or not task_row.webhook_url:
        return "skipped"
    try:
        status = _post_signed(task_row)
    except FetchError as exc:
        problem, retryable = exc.message, exc.code not in PERMANENT_FAILURES
    except WebhookSecretUnreadable as exc:
        problem, retryable = str(exc), False
    else:
        if 200 <= status < 300:
            record_message(task_id, task_row.status, f"Webhook delivered ({status}).")
            return "delivered"
        problem, retryable = f"the receiver answered {status}.", True
    counted = f"attempt {attempt} of {MAX_ATTEMPTS}"
    if retryable and attempt < MAX_ATTEMPTS:
        delay = RETRY_DELAYS[attempt - 1]
        record_message(task_id, task_row.status, f"Webhook failed ({counted}, retry in {delay} s): {problem}")
        _retry_later(task_id, attempt + 1, delay)
        return "retrying"
    record_message(task_id, task_row.status, f"Webhook failed ({counted}, giving up): {problem}")
    return "failed"
