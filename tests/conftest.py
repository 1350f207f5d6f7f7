import pytest
from django.contrib.auth import get_user_model
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.tasks import task_backends
from django.utils.connection import Local

from playground.catalog.loading import load_builtin_catalog
from playground.keys.services import issue_key

from .helpers import Api


@receiver(setting_changed)
def _reset_task_backends(*, setting, **kwargs):
    # Django does not rebuild task backends when TASKS changes; tests switch between backends.
    if setting == "TASKS":
        task_backends.__dict__.pop("settings", None)
        task_backends._settings = None
        task_backends._connections = Local(task_backends.thread_critical)


@pytest.fixture(autouse=True)
def immediate_tasks(settings):
    """Tests not about the queue run tasks in-process as soon as the submit commits."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def queue_only(settings):
    """Tasks are queued and never run: for tests about submitting, not running."""
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def catalog(db):
    return {entry.slug: entry for entry in load_builtin_catalog()}


@pytest.fixture
def user(db):
    return get_user_model().objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def other_user(db):
    return get_user_model().objects.create_user("bob", password="bob-password-1")


@pytest.fixture
def key(user):
    return issue_key(user, name="tests").secret


@pytest.fixture
def api(client, key, catalog, django_capture_on_commit_callbacks):
    return Api(client, key, django_capture_on_commit_callbacks)


@pytest.fixture
def other_api(client, other_user, catalog, django_capture_on_commit_callbacks):
    return Api(client, issue_key(other_user).secret, django_capture_on_commit_callbacks)
