import time

import pytest
from django.utils import timezone

from playground.generations.models import Task
from playground.keys.models import ApiKey
from playground.keys.services import issue_key, set_key_disabled

from .helpers import SEED, Api

ENDPOINTS = [
    ("get", "/api/v1/tasks"),
    ("post", "/api/v1/tasks"),
    ("get", "/api/v1/tasks/task_x"),
    ("get", "/api/v1/tasks/task_x/events"),
    ("post", "/api/v1/tasks/task_x/cancel"),
    ("get", "/api/v1/models"),
    ("get", f"/api/v1/models/{SEED}"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_answers_401_without_a_key(client, catalog, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_key"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("Bearer pg_live_" + "A" * 38, "invalid_key"),  # right shape, wrong checksum
        ("Bearer mv_live_xxx", "invalid_key"),
        ("Basic dXNlcjpwYXNz", "missing_key"),
        ("Bearer", "missing_key"),
    ],
)
def test_it_answers_401_for_a_bad_key(client, catalog, header, code):
    response = client.get("/api/v1/tasks", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code


def test_a_well_formed_key_that_was_never_issued_is_refused(client, user, catalog):
    issued = issue_key(user)
    ApiKey.objects.filter(pk=issued.key.pk).delete()  # gone from the database entirely
    response = client.get("/api/v1/tasks", headers={"Authorization": f"Bearer {issued.secret}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_key"


@pytest.mark.parametrize(
    ("field", "code"),
    [("disabled_at", "key_disabled"), ("deleted_at", "key_deleted"), ("expires_at", "key_expired")],
)
def test_disabled_deleted_and_expired_keys_get_401_saying_which(
    client, user, catalog, django_capture_on_commit_callbacks, field, code, settings
):
    """The change is made as another process would make it (an UPDATE, no signal to this one): it
    reaches this process's key cache within PLAYGROUND_KEY_CACHE_SECONDS, the documented bound."""
    settings.PLAYGROUND_KEY_CACHE_SECONDS = 1.0  # the default
    issued = issue_key(user)
    api = Api(client, issued.secret, django_capture_on_commit_callbacks)
    assert api.get("/api/v1/tasks").status_code == 200
    ApiKey.objects.filter(pk=issued.key.pk).update(**{field: timezone.now()})
    time.sleep(settings.PLAYGROUND_KEY_CACHE_SECONDS)
    response = api.submit()
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert not Task.objects.exists()


def test_a_key_disabled_in_this_process_stops_at_once(client, user, django_capture_on_commit_callbacks):
    issued = issue_key(user)
    api = Api(client, issued.secret, django_capture_on_commit_callbacks)
    assert api.get("/api/v1/tasks").status_code == 200
    set_key_disabled(issued.key, True)
    assert api.get("/api/v1/tasks").json()["error"]["code"] == "key_disabled"


def test_a_key_of_a_deactivated_account_is_refused(api, user):
    user.is_active = False
    user.save()
    assert api.get("/api/v1/tasks").status_code == 401


def test_it_records_last_use_at_most_once_a_minute(api, user, django_assert_num_queries, settings):
    settings.PLAYGROUND_KEY_CACHE_SECONDS = 60  # so a slow machine's second request finds the key too
    api.get("/api/v1/models")
    key = ApiKey.objects.get(user=user)
    assert key.last_used_at is not None
    assert key.last_used_ip == "127.0.0.1"
    # The models query only: the key was read a moment ago (kept a while), its use recorded
    # less than a minute ago, and its rate count is leased (the first request counted 12 hits).
    with django_assert_num_queries(1):
        api.get("/api/v1/models")
