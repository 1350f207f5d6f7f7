import os
import signal
import socket
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.tasks import task_backends
from django.utils.connection import Local

from playground.catalog.loading import load_builtin_catalog
from playground.keys.services import issue_key
from playground.storage import storages_setting

from .fixtures_http import (  # noqa: F401 (fixtures: fake DNS and local HTTP servers)
    fake_dns,
    http_server,
    outbound_connections,
    start_http_server,
)
from .helpers import ROOT, Api, database_url

WORKER = ("db_worker", "--interval", "0.1", "--no-reload", "--no-startup-delay")

# tests/scale restarts the machine's PostgreSQL and runs a cluster of processes: `make test-scale`.
collect_ignore_glob = [] if os.environ.get("PLAYGROUND_SCALE_TESTS") else ["scale/*"]


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
def fresh_cache(request):
    """Rate-limit counters live in the cache: every test starts with none. The default cache is a
    table in the database, so it is cleared once the test's database is set up (a test without
    the database cannot count anything there)."""
    from django.core.cache import caches
    from django.core.cache.backends.db import DatabaseCache

    from playground.access.ratelimit import forget_leases
    from playground.generations.presenters import rendered_bodies
    from playground.keys.services import forget_recent_keys

    forget_leases()  # hits this process leased from counts that start again now
    forget_recent_keys()  # keys read from a database that starts again now
    rendered_bodies.clear()  # bodies of tasks in a database that starts again now
    cache = caches["default"]
    if isinstance(cache, DatabaseCache):
        marker = request.node.get_closest_marker("django_db")
        if {"transactional_db", "live_server"} & set(request.fixturenames) or (
            marker and marker.kwargs.get("transaction")
        ):
            request.getfixturevalue("transactional_db")
        elif "db" in request.fixturenames or marker:
            request.getfixturevalue("db")
        else:
            return
    cache.clear()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def bucket_down(settings):
    """Files go to an S3-compatible bucket that does not answer: its endpoint is a 127.0.0.1 port
    held open by nothing listening, so every connection is refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{held.getsockname()[1]}"
        default = storages_setting(f"s3://KEY:SECRET@media?endpoint={endpoint}&region=eu-central-1")
        settings.STORAGES = {**settings.STORAGES, "default": default}
        yield


@pytest.fixture
def signup_open(settings):
    """Open self-service sign-up (PLAYGROUND_SIGNUP, off by default: people join by invite)."""
    settings.PLAYGROUND_SIGNUP = True


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


@pytest.fixture
def spawn(settings, transactional_db, tmp_path):
    """Start `manage.py <args>` as a child process on this test's (file-backed) database and media.

    `spawn(*args, **env)`; env adds variables such as PLAYGROUND_LOCAL_ENGINE_DELAY="1". The child's
    output goes to the file `process.log`. Children still running at teardown get SIGTERM (then
    SIGKILL); their output is printed for failing tests.
    Submits in the test enqueue on the real queue, for the children to run.
    """
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    base_env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "PLAYGROUND_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PLAYGROUND_TASK_BACKEND": "django_tasks_db.DatabaseBackend",
        "SECRET_KEY": django_settings.SECRET_KEY,
    }
    children = []

    def start(*args, **env):
        log = tmp_path / f"{len(children)}-{args[0]}.log"
        with log.open("w") as output:
            process = subprocess.Popen(
                [sys.executable, "manage.py", *map(str, args)],
                cwd=ROOT,
                env={**base_env, **{name: str(value) for name, value in env.items()}},
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
            )
        process.log = log
        children.append((process, log))
        return process

    yield start
    for process, _ in children:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process, log in children:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        print(f"--- {' '.join(process.args[2:])} (exit {process.returncode})\n{log.read_text()}")


@pytest.fixture
def worker(spawn):
    """A real `db_worker` process running tasks queued by this test."""
    return spawn(*WORKER)


@pytest.fixture
def make_task(django_capture_on_commit_callbacks):
    """Submit a task the way the browser does; with the immediate backend it has run on return."""
    from playground.generations.services import submit_task

    from .helpers import SEED, seed_input

    def make(owner, catalog, model=SEED, **overrides):
        entry = catalog[model]
        data = seed_input(**overrides) if model == SEED else {**entry.example_input, **overrides}
        with django_capture_on_commit_callbacks(execute=True):
            task = submit_task(owner, model, data, request_id="req_test", source="web").task
        task.refresh_from_db()
        return task

    return make


@pytest.fixture
def fake():
    """The MindVideo platform, faked on 127.0.0.1 (tests/upstream.py)."""
    from .upstream import FakeUpstream

    upstream = FakeUpstream()
    yield upstream
    upstream.close()


@pytest.fixture
def mindvideo(settings, fake, user):
    """Our tasks run on the `mindvideo` engine against the fake, with the user's key stored."""
    from playground.keys.credentials import store_upstream_key

    settings.PLAYGROUND_ENGINE = "mindvideo"
    settings.MINDVIDEO_BASE_URL = fake.base_url
    settings.MINDVIDEO_POLL_INTERVAL = 0.01
    settings.MINDVIDEO_TIMEOUT = 2.0
    settings.MINDVIDEO_MAX_RETRIES = 2
    store_upstream_key(user, fake.key)
    return fake
