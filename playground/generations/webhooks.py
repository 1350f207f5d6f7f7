"""Webhooks: when a task with a `webhook_url` ends, POST its final state there, signed.

The body is exactly what `GET /api/v1/tasks/{id}` returns (`presenters.task_body`). The header
`X-Playground-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">` is keyed by one
server-wide secret, PLAYGROUND_WEBHOOK_SECRET (empty: derived from SECRET_KEY; `manage.py
webhook_secret` prints it). A receiver recomputes the HMAC over the raw body and rejects a stale `t`.

Delivery goes through the fetcher's address rules (no private targets unless allow-listed). A
failed attempt (no connection, a timeout, any answer but 2xx) is retried by the job re-enqueueing
itself `RETRY_DELAYS` later, up to `MAX_ATTEMPTS` in all; a target refused by the address rules is
not retried. Every attempt is recorded as a TaskEvent message, so the task's events show it.
"""

import hashlib
import hmac
import json
import time
from datetime import timedelta

from django.conf import settings
from django.tasks import task
from django.utils import timezone
from django.utils.crypto import salted_hmac

from playground.engines.fetch import FetchError, post_json

from .models import Task
from .presenters import task_body
from .services import record_message

MAX_ATTEMPTS = 5
RETRY_DELAYS = (10, 60, 300, 1800)  # seconds before attempts 2, 3, 4 and 5
SIGNATURE_HEADER = "X-Playground-Signature"
# The target itself is refused: retrying cannot help.
PERMANENT_FAILURES = frozenset(
    {"unsupported_url", "invalid_url", "forbidden_port", "forbidden_address", "too_many_redirects"}
)


def webhook_secret() -> str:
    """The key webhook signatures are made with: the setting, else one derived from SECRET_KEY."""
    if settings.PLAYGROUND_WEBHOOK_SECRET:
        return settings.PLAYGROUND_WEBHOOK_SECRET
    return "whsec_" + salted_hmac("playground.webhooks", "secret", algorithm="sha256").hexdigest()


def signature(body: bytes, timestamp: int, secret: str) -> str:
    """The X-Playground-Signature value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _retry_later(task_id: str, attempt: int, delay: int) -> None:
    job = deliver_webhook
    if job.get_backend().supports_defer:
        job = job.using(run_after=timezone.now() + timedelta(seconds=delay))
    # A backend that cannot defer (the immediate backend of the tests) retries at once.
    job.enqueue(task_id, attempt)


@task()
def deliver_webhook(task_id: str, attempt: int = 1) -> str:
    """Make delivery attempt number `attempt`; returns delivered, retrying, failed or skipped."""
    task_row = Task.objects.select_related("model").filter(pk=task_id).first()
    if task_row is None or not task_row.webhook_url:
        return "skipped"
    body = json.dumps(task_body(None, task_row), separators=(",", ":")).encode()
    headers = {
        SIGNATURE_HEADER: signature(body, int(time.time()), webhook_secret()),
        "User-Agent": "playground-webhooks/1",
    }
    try:
        status = post_json(
            task_row.webhook_url, body, headers=headers, timeout=settings.PLAYGROUND_WEBHOOK_TIMEOUT
        )
    except FetchError as exc:
        problem, retryable = exc.message, exc.code not in PERMANENT_FAILURES
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
