"""Webhooks: a task submitted with `webhook_url` POSTs its final state there, signed, retried with
backoff, and only ever to a target the address rules allow.

Receivers are local 127.0.0.1 servers (tests/fixtures_http.py). Tasks and deliveries run on the
immediate backend, except where the test is about the real queue's delay between attempts.
"""

import hashlib
import hmac
import io
import json
import socket
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from playground.api.openapi import openapi_document
from playground.generations.models import Task, TaskEvent
from playground.generations.webhooks import deliver_webhook

from .fixtures_http import Reply
from .helpers import SEED, seed_input

SECRET = "whsec_test_secret"


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.PLAYGROUND_WEBHOOK_SECRET = SECRET
    settings.PLAYGROUND_PUBLIC_URL = "https://play.example.com"  # absolute output URLs in bodies


def submit(api, webhook_url, headers=None, **overrides):
    body = {"model": SEED, "input": seed_input(**overrides), "webhook_url": webhook_url}
    return api.post("/api/v1/tasks", body, headers=headers)


def verifies(signature_header: str, body: bytes, secret: str = SECRET) -> bool:
    """What a receiver does: recompute the HMAC over `t` and the raw body; refuse a stale `t`."""
    fields = dict(part.split("=", 1) for part in signature_header.split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(fields["t"])) < 300
    return fresh and hmac.compare_digest(expected, fields["v1"])


def webhook_messages(task_id: str) -> list[str]:
    return list(
        TaskEvent.objects.filter(task_id=task_id, message__startswith="Webhook").values_list(
            "message", flat=True
        )
    )


def test_a_receiver_gets_exactly_one_signed_post_of_the_task_body(api, http_server):
    hook = http_server.route("/hook", Reply(200, b"thanks"))

    created = submit(api, hook)

    assert created.status_code == 201
    task_id = created.json()["task_id"]
    [delivery] = http_server.requests_to("/hook")
    assert delivery.method == "POST"
    assert delivery.headers["Content-Type"] == "application/json"
    assert verifies(delivery.headers["X-Playground-Signature"], delivery.body)
    assert not verifies(delivery.headers["X-Playground-Signature"], delivery.body + b" ")
    body = json.loads(delivery.body)
    assert body == api.get(f"/api/v1/tasks/{task_id}").json()
    assert body["status"] == "succeeded"
    assert body["output"]["images"][0]["url"].startswith("https://play.example.com/files/")
    assert webhook_messages(task_id) == ["Webhook delivered (200)."]


def test_a_receiver_answering_500_is_retried_until_it_accepts(api, http_server):
    hook = http_server.route("/hook", Reply(500, b"oops"), Reply(200, b"ok"))

    task_id = submit(api, hook).json()["task_id"]

    deliveries = http_server.requests_to("/hook")
    assert len(deliveries) == 2
    assert all(verifies(d.headers["X-Playground-Signature"], d.body) for d in deliveries)
    assert webhook_messages(task_id) == [
        "Webhook failed (attempt 1 of 5, retry in 10 s): the receiver answered 500.",
        "Webhook delivered (200).",
    ]


def test_delivery_gives_up_after_five_attempts(api, http_server):
    hook = http_server.route("/hook", Reply(503, b"down"))

    task_id = submit(api, hook).json()["task_id"]

    assert len(http_server.requests_to("/hook")) == 5
    messages = webhook_messages(task_id)
    assert len(messages) == 5
    assert messages[-1] == "Webhook failed (attempt 5 of 5, giving up): the receiver answered 503."


def test_an_unreachable_receiver_is_retried_too(api, settings):
    with socket.socket() as placeholder:  # a port nothing listens on
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    settings.PLAYGROUND_FETCH_ALLOWED_HOSTS = [f"127.0.0.1:{port}"]

    task_id = submit(api, f"http://127.0.0.1:{port}/hook").json()["task_id"]

    messages = webhook_messages(task_id)
    assert len(messages) == 5
    assert messages[0].startswith("Webhook failed (attempt 1 of 5, retry in 10 s): Could not connect")
    assert Task.objects.get(pk=task_id).status == "succeeded"  # the task itself is unaffected


def test_a_retry_waits_its_backoff_on_the_real_queue(api, http_server, settings, queue_only):
    hook = http_server.route("/hook", Reply(500, b"oops"))
    task_id = submit(api, hook).json()["task_id"]
    Task.objects.filter(pk=task_id).update(status="failed")
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

    assert deliver_webhook.call(task_id, 2) == "retrying"

    [retry] = DBTaskResult.objects.filter(task_path__endswith="deliver_webhook")
    assert retry.args_kwargs == {"args": [task_id, 3], "kwargs": {}}
    wait = retry.run_after - timezone.now()
    assert timedelta(seconds=55) < wait <= timedelta(seconds=60)  # the second delay: a minute
    assert len(http_server.requests_to("/hook")) == 1


def test_a_cancelled_task_notifies_its_webhook(api, http_server, settings, queue_only):
    hook = http_server.route("/hook", Reply(204))
    task_id = submit(api, hook).json()["task_id"]
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}

    api.post(f"/api/v1/tasks/{task_id}/cancel")

    [delivery] = http_server.requests_to("/hook")
    assert json.loads(delivery.body)["status"] == "cancelled"
    assert webhook_messages(task_id) == ["Webhook delivered (204)."]


def test_a_task_without_a_webhook_sends_nothing(api, http_server):
    task_id = api.submit().json()["task_id"]

    assert http_server.requests == []
    assert webhook_messages(task_id) == []


# --- the address rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("webhook_url", "code"),
    [
        ("http://10.0.0.1/hook", "forbidden_address"),
        ("http://127.0.0.1/hook", "forbidden_address"),
        ("http://[::ffff:169.254.169.254]/hook", "forbidden_address"),
        ("http://private-hooks.test/hook", "forbidden_address"),
        ("http://localhost:8080/hook", "forbidden_port"),
        ("ftp://hooks.example/hook", "unsupported_url"),
        (12345, "invalid_url"),
        ("https://hooks.example/" + "a" * 2000, "invalid_url"),
    ],
    ids=[
        "private",
        "loopback",
        "mapped-metadata",
        "name-to-private",
        "port",
        "ftp",
        "not-a-string",
        "too-long",
    ],
)
def test_a_refused_target_is_422_naming_webhook_url(api, fake_dns, outbound_connections, webhook_url, code):
    fake_dns["private-hooks.test"] = "192.168.0.10"

    response = submit(api, webhook_url)

    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_webhook_url", "webhook_url")
    assert error["errors"][0]["code"] == code
    assert not Task.objects.exists()
    assert outbound_connections == []


def test_a_target_resolving_to_a_private_address_by_delivery_time_is_not_contacted(
    api, fake_dns, settings, outbound_connections, queue_only
):
    task_id = submit(api, "http://hooks.test/hook").json()["task_id"]  # not resolvable yet: accepted
    fake_dns["hooks.test"] = "10.0.0.9"
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}

    api.post(f"/api/v1/tasks/{task_id}/cancel")

    assert webhook_messages(task_id) == [
        "Webhook failed (attempt 1 of 5, giving up): hooks.test resolves to 10.0.0.9, a private "
        "network address; it is not fetched from."
    ]
    assert outbound_connections == []


# --- idempotency, the secret, the document --------------------------------------------------------


def test_the_webhook_url_is_part_of_the_idempotent_request(api, queue_only):
    key = {"Idempotency-Key": "webhook-1"}
    first = submit(api, "https://hooks.example/a", headers=key)

    assert submit(api, "https://hooks.example/a", headers=key).status_code == 200
    assert submit(api, "https://hooks.example/b", headers=key).status_code == 409
    assert api.submit(headers=key).status_code == 409
    assert Task.objects.get().webhook_url == "https://hooks.example/a"
    assert first.status_code == 201


def test_without_a_configured_secret_receivers_verify_with_the_one_the_command_prints(
    api, http_server, settings
):
    settings.PLAYGROUND_WEBHOOK_SECRET = ""
    printed = io.StringIO()
    call_command("webhook_secret", stdout=printed)
    secret = printed.getvalue().strip()
    hook = http_server.route("/hook", Reply(200))

    submit(api, hook)

    [delivery] = http_server.requests_to("/hook")
    assert secret.startswith("whsec_") and secret != SECRET
    assert verifies(delivery.headers["X-Playground-Signature"], delivery.body, secret)


def test_the_openapi_document_describes_webhook_url():
    create = openapi_document()["components"]["schemas"]["CreateTask"]["properties"]

    assert create["webhook_url"]["type"] == "string"
    assert "X-Playground-Signature" in create["webhook_url"]["description"]
