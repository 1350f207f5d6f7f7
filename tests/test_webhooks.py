"""Webhooks: a task submitted with `webhook_url` POSTs its final state there, signed the Standard
Webhooks way with its owner's own secret, retried with backoff, and only ever to a target the
address rules allow.

Receivers are local 127.0.0.1 servers (tests/fixtures_http.py); the ones built by `verifying` do
what the README tells a receiver to do: verify with the Standard Webhooks library and refuse (401)
what does not verify, so "Webhook delivered" in the events means the receiver accepted the
signature. Tasks and deliveries run on the immediate backend, except where the test is about the
real queue's delay between attempts.
"""

import base64
import hashlib
import hmac
import json
import logging
import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from standardwebhooks import Webhook, WebhookVerificationError

from playground.generations.models import Task, TaskEvent
from playground.generations.openapi import openapi_document
from playground.generations.webhooks import deliver_webhook, signed_headers
from playground.keys.models import WebhookSecret
from playground.keys.webhook_secrets import current_webhook_secret, rotate_webhook_secret

from .fixtures_http import Received, Reply
from .helpers import ROOT, SEED, seed_input


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.PLAYGROUND_PUBLIC_URL = "https://play.example.com"  # absolute output URLs in bodies


def submit(api, webhook_url, headers=None, **overrides):
    body = {"model": SEED, "input": seed_input(**overrides), "webhook_url": webhook_url}
    return api.post("/api/v1/tasks", body, headers=headers)


def verifies(delivery: Received, secret: str) -> bool:
    """The Standard Webhooks reference verifier's verdict on a received POST."""
    try:
        Webhook(secret).verify(delivery.body, delivery.headers)
    except WebhookVerificationError:
        return False
    return True


def verifying(secret: str, status: int = 204):
    """A receiver's answer: `status` when the POST verifies with `secret`, else 401."""
    return lambda delivery: Reply(status) if verifies(delivery, secret) else Reply(401, b"bad signature")


def signatures(delivery: Received) -> list[str]:
    return delivery.headers["webhook-signature"].split(" ")


def webhook_messages(task_id: str) -> list[str]:
    return list(
        TaskEvent.objects.filter(task_id=task_id, message__startswith="Webhook").values_list(
            "message", flat=True
        )
    )


def test_a_receiver_verifies_exactly_one_post_of_the_task_body_with_its_owners_secret(api, user, http_server):
    secret = current_webhook_secret(user.pk)  # what the owner copies from the Keys page
    hook = http_server.route("/hook", verifying(secret))

    created = submit(api, hook)

    assert created.status_code == 201
    task_id = created.json()["task_id"]
    assert webhook_messages(task_id) == ["Webhook delivered (204)."]  # the receiver verified it
    [delivery] = http_server.requests_to("/hook")
    assert delivery.method == "POST"
    assert delivery.headers["Content-Type"] == "application/json"
    assert delivery.headers["webhook-id"] == f"msg_{task_id}"
    assert abs(int(delivery.headers["webhook-timestamp"]) - time.time()) < 60
    assert len(signatures(delivery)) == 1 and signatures(delivery)[0].startswith("v1,")
    assert "X-Playground-Signature" not in delivery.headers
    tampered = Received(delivery.method, delivery.path, delivery.headers, delivery.body + b" ")
    assert not verifies(tampered, secret)
    body = json.loads(delivery.body)
    assert body == api.get(f"/api/v1/tasks/{task_id}").json()
    assert body["status"] == "succeeded"
    assert body["output"]["images"][0]["url"].startswith("https://play.example.com/files/")


def test_the_first_webhook_makes_its_owners_secret(api, user, http_server):
    hook = http_server.route("/hook", Reply(200))
    assert not WebhookSecret.objects.exists()

    submit(api, hook)

    [delivery] = http_server.requests_to("/hook")
    assert WebhookSecret.objects.filter(owner=user).count() == 1
    assert verifies(delivery, current_webhook_secret(user.pk))


def test_one_owners_secret_does_not_verify_another_owners_webhook(
    api, other_api, user, other_user, http_server
):
    alices, bobs = current_webhook_secret(user.pk), current_webhook_secret(other_user.pk)
    alices_receiver = http_server.route("/alice", verifying(alices))

    from_alice = submit(api, alices_receiver).json()["task_id"]
    from_bob = submit(other_api, alices_receiver).json()["task_id"]  # Bob knows Alice's URL

    assert alices != bobs
    assert webhook_messages(from_alice) == ["Webhook delivered (204)."]
    assert webhook_messages(from_bob)[-1] == (
        "Webhook failed (attempt 5 of 5, giving up): the receiver answered 401."
    )
    [alice_post, *bob_posts] = http_server.requests_to("/alice")
    assert len(bob_posts) == 5
    assert all(verifies(post, bobs) and not verifies(post, alices) for post in bob_posts)
    assert verifies(alice_post, alices) and not verifies(alice_post, bobs)


def test_after_a_rotation_old_and_new_secrets_verify_until_the_grace_period_ends(
    api, user, http_server, settings
):
    settings.PLAYGROUND_WEBHOOK_SECRET_GRACE = 24 * 3600
    old = current_webhook_secret(user.pk)
    new = rotate_webhook_secret(user.pk)
    old_receiver = http_server.route("/old", verifying(old))
    new_receiver = http_server.route("/new", verifying(new))

    during = [submit(api, old_receiver).json()["task_id"], submit(api, new_receiver).json()["task_id"]]

    assert [webhook_messages(task_id) for task_id in during] == [["Webhook delivered (204)."]] * 2
    [to_old] = http_server.requests_to("/old")
    assert len(signatures(to_old)) == 2  # one per secret, space-separated
    retired = WebhookSecret.objects.get(owner=user, expires_at__isnull=False)
    assert abs(retired.expires_at - (timezone.now() + timedelta(hours=24))) < timedelta(seconds=10)

    # A day later: the old secret's grace period is over.
    WebhookSecret.objects.filter(pk=retired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    after = [submit(api, old_receiver).json()["task_id"], submit(api, new_receiver).json()["task_id"]]

    assert webhook_messages(after[0])[-1] == (
        "Webhook failed (attempt 5 of 5, giving up): the receiver answered 401."
    )
    assert webhook_messages(after[1]) == ["Webhook delivered (204)."]
    last = http_server.requests_to("/new")[-1]
    assert len(signatures(last)) == 1 and verifies(last, new) and not verifies(last, old)


def test_without_a_grace_period_only_the_new_secret_signs_at_once(api, user, http_server, settings):
    settings.PLAYGROUND_WEBHOOK_SECRET_GRACE = 0
    old = current_webhook_secret(user.pk)
    new = rotate_webhook_secret(user.pk)
    hook = http_server.route("/hook", Reply(200))

    submit(api, hook)

    [delivery] = http_server.requests_to("/hook")
    assert verifies(delivery, new) and not verifies(delivery, old)


def test_a_receiver_answering_500_is_retried_with_the_same_webhook_id_until_it_accepts(
    api, user, http_server
):
    secret = current_webhook_secret(user.pk)
    hook = http_server.route("/hook", Reply(500, b"oops"), verifying(secret, 200))

    task_id = submit(api, hook).json()["task_id"]
    another = submit(api, hook).json()["task_id"]

    deliveries = http_server.requests_to("/hook")
    assert len(deliveries) == 3
    assert [d.headers["webhook-id"] for d in deliveries] == [f"msg_{task_id}"] * 2 + [f"msg_{another}"]
    assert all(verifies(d, secret) for d in deliveries)
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


def test_a_process_that_never_imports_the_webhooks_module_still_queues_deliveries():
    # The worker ends tasks without importing webhooks.py itself (this test module does, so an
    # in-process check would pass however the receiver got connected): the app connects it.
    code = (
        "import django; django.setup(); "
        "from playground.generations.lifecycle import task_ended; "
        "from playground.generations.models import Task; "
        "print(task_ended.has_listeners(Task))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "playground.settings"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


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


# --- idempotency, the signature, the document -----------------------------------------------------


def test_the_webhook_url_is_part_of_the_idempotent_request(api, queue_only):
    key = {"Idempotency-Key": "webhook-1"}
    first = submit(api, "https://hooks.example/a", headers=key)

    assert submit(api, "https://hooks.example/a", headers=key).status_code == 200
    assert submit(api, "https://hooks.example/b", headers=key).status_code == 409
    assert api.submit(headers=key).status_code == 409
    assert Task.objects.get().webhook_url == "https://hooks.example/a"
    assert first.status_code == 201


def test_an_unreadable_secret_sends_nothing_and_says_to_rotate(api, user, http_server, settings, caplog):
    settings.PLAYGROUND_FERNET_KEYS = [Fernet.generate_key().decode()]
    secret = current_webhook_secret(user.pk)
    settings.PLAYGROUND_FERNET_KEYS = [Fernet.generate_key().decode()]  # the old key dropped unrotated
    hook = http_server.route("/hook", Reply(200))
    caplog.set_level(logging.DEBUG)

    task_id = submit(api, hook).json()["task_id"]

    assert http_server.requests_to("/hook") == []
    assert webhook_messages(task_id) == [
        "Webhook failed (attempt 1 of 5, giving up): Your webhook signing secret cannot be decrypted "
        "with the server's encryption keys: rotate it on the Keys page (and give the new one to your "
        "receiver)."
    ]
    assert "cannot be decrypted" in caplog.text and secret not in caplog.text


def test_the_signature_is_the_standard_webhooks_one():
    """The spec's example (secret, id, timestamp, body -> signature), and the spec's recipe done by
    hand: HMAC-SHA256, keyed by the base64-decoded secret, over "<id>.<timestamp>.<body>"."""
    secret, msg_id = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek"
    body, sent_at = b'{"test": 2432232314}', datetime.fromtimestamp(1614265330, UTC)
    rotated_in = "whsec_" + base64.b64encode(b"another secret of 32 bytes here!").decode()

    headers = signed_headers(msg_id, body, [secret, rotated_in], sent_at)

    assert headers["webhook-id"] == msg_id
    assert headers["webhook-timestamp"] == "1614265330"
    first, second = headers["webhook-signature"].split(" ")
    assert first == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    key = base64.b64decode(rotated_in.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.1614265330.".encode() + body, hashlib.sha256).digest()
    assert second == "v1," + base64.b64encode(digest).decode()


def test_the_openapi_document_describes_webhook_url():
    create = openapi_document()["components"]["schemas"]["CreateTask"]["properties"]

    assert create["webhook_url"]["type"] == "string"
    assert "webhook-signature" in create["webhook_url"]["description"]
    assert "Standard Webhooks" in create["webhook_url"]["description"]


def test_a_team_tasks_webhook_is_signed_with_the_teams_secret_whoever_ran_it(
    client, user, other_user, catalog, http_server, django_capture_on_commit_callbacks
):
    from playground.keys.services import issue_key
    from playground.teams.services import add_member, create_team

    from .helpers import Api

    team = create_team("studio", user)
    add_member(team, other_user)
    teams_secret = current_webhook_secret(user.pk, team.pk)  # what an admin copies from the keys page
    members_own = current_webhook_secret(other_user.pk)
    receiver = http_server.route("/team-hook", verifying(teams_secret))
    member = Api(client, issue_key(other_user, team=team).secret, django_capture_on_commit_callbacks)

    task_id = submit(member, receiver).json()["task_id"]

    assert webhook_messages(task_id) == ["Webhook delivered (204)."]
    [delivery] = http_server.requests_to("/team-hook")
    assert not verifies(delivery, members_own)
    # A rotation of the team's secret is the team's: the member's own stays as it was.
    rotated = rotate_webhook_secret(user.pk, team_id=team.pk, keep_previous=False)
    assert rotated != teams_secret and current_webhook_secret(other_user.pk) == members_own
    assert current_webhook_secret(other_user.pk, team.pk) == rotated
