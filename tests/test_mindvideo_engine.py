"""The `mindvideo` engine: against a second playground (the real contract, served by gunicorn with its
own worker and database), and against a fake platform on 127.0.0.1 for every failure a real one
will not produce on demand."""

import io
import os
import secrets
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from django.core.files.storage import default_storage
from PIL import Image

from playground.engines.base import EngineError, EngineJob, EngineStopped
from playground.engines.mindvideo import MindVideoConfig, MindVideoEngine, idempotency_key
from playground.generations.models import Task
from playground.keys.credentials import store_upstream_key
from playground.keys.models import UpstreamCredential

from .helpers import SEED, money, seed_input
from .upstream import FakeUpstream, Reply, png_bytes

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_through_api(api, **overrides) -> tuple[dict, Task]:
    """Submit through our API (the immediate backend runs the task) and read the task back."""
    created = api.submit(**overrides)
    assert created.status_code == 201, created.json()
    task_id = created.json()["task_id"]
    return api.get(f"/api/v1/tasks/{task_id}").json(), Task.objects.get(pk=task_id)


def messages(task: Task) -> list[str]:
    return [event.message for event in task.events.all()]


# --- A second playground as the platform ----------------------------------------------------------


@pytest.fixture(scope="module")
def second_playground(tmp_path_factory):
    """Another playground on 127.0.0.1 (gunicorn + db_worker, its own SQLite database, the local
    engine), with a user and a key issued there."""
    folder = tmp_path_factory.mktemp("second-playground")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "PLAYGROUND_DATA_DIR": str(folder),
        "PLAYGROUND_MEDIA_ROOT": str(folder / "media"),
        "PLAYGROUND_ENV_FILE": str(folder / "no.env"),
        "PLAYGROUND_ENGINE": "local",
        "PLAYGROUND_PUBLIC_URL": "",
        "PLAYGROUND_TASK_BACKEND": "django_tasks_db.DatabaseBackend",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "DJANGO_SUPERUSER_PASSWORD": secrets.token_urlsafe(16),
    }

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    manage("migrate", "--no-input")
    manage("load_catalog")
    manage("createsuperuser", "--no-input", "--username", "upstream", "--email", "upstream@example.com")
    key = manage("issue_key", "upstream", "--name", "the first playground").strip()
    processes = [
        subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for command in (
            [
                sys.executable,
                "-m",
                "gunicorn",
                "playground.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--threads",
                "4",
            ],
            [
                sys.executable,
                "manage.py",
                "db_worker",
                "--interval",
                "0.1",
                "--no-reload",
                "--no-startup-delay",
            ],
        )
    ]
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in processes), "the second playground did not start"
        try:
            if httpx.get(f"{base_url}/api/v1/openapi.json", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        pytest.fail("the second playground did not answer within a minute")
    yield type("SecondPlayground", (), {"base_url": base_url, "key": key})
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=20)


def upstream_get(playground, path: str) -> dict:
    response = httpx.get(
        f"{playground.base_url}/api/v1/{path}", headers={"Authorization": f"Bearer {playground.key}"}
    )
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def on_second_playground(settings, user, second_playground):
    settings.PLAYGROUND_ENGINE = "mindvideo"
    settings.MINDVIDEO_BASE_URL = f"{second_playground.base_url}/api/v1/"  # the /api/v1 is accepted
    settings.MINDVIDEO_POLL_INTERVAL = 0.05
    store_upstream_key(user, second_playground.key, label="second playground")
    return second_playground


@pytest.mark.worker
def test_it_runs_a_task_on_a_second_playground_and_keeps_the_images(api, user, on_second_playground):
    body, task = run_through_api(api, n=2)

    assert body["status"] == "succeeded", body["error"]
    upstream = upstream_get(on_second_playground, f"tasks/{task.upstream_id}")
    assert upstream["status"] == "succeeded"
    assert money(body["cost_actual"]) == money(upstream["cost_actual"]) == money("0.2412")
    assert len(upstream["output"]["images"]) == 2

    files = task.output["images"]
    assert [f["file"] for f in files] == [f"outputs/{task.pk}/1/0.png", f"outputs/{task.pk}/1/1.png"]
    for stored, presented in zip(files, body["output"]["images"], strict=True):
        assert default_storage.exists(stored["file"])
        content = default_storage.open(stored["file"]).read()
        assert content.startswith(PNG_SIGNATURE)
        assert (stored["width"], stored["height"]) == (1024, 1024) == Image.open(io.BytesIO(content)).size
        served = api.client.get(presented["url"].removeprefix("http://testserver"))
        assert served.status_code == 200
        assert b"".join(served.streaming_content) == content
        assert served["Content-Type"] == "image/png"

    # Upstream's own events went queued -> processing -> succeeded, and its messages came along.
    upstream_events = upstream_get(on_second_playground, f"tasks/{task.upstream_id}/events")["data"]
    assert [e["status"] for e in upstream_events if e["type"] == "status"] == [
        "queued",
        "processing",
        "succeeded",
    ]
    ours = messages(task)
    assert f"Submitted to MindVideo as {task.upstream_id}." in ours
    assert any(m.startswith("MindVideo: Rendering image 2 of 2") for m in ours)  # upstream's own news
    assert "MindVideo: succeeded." in ours and ours[-1] == "Finished."
    assert UpstreamCredential.objects.get(user=user).last_used_at is not None


@pytest.mark.worker
def test_it_never_makes_a_second_upstream_task_when_a_run_crashed_after_submitting(
    api, queue_only, on_second_playground
):
    created = api.submit(prompt="crash after submit")
    task = Task.objects.get(pk=created.json()["task_id"])
    before = len(upstream_get(on_second_playground, "tasks?limit=100")["data"])
    job = job_of(task, on_second_playground.key)
    engine = MindVideoEngine()

    with pytest.raises(RuntimeError, match="worker died"):
        engine.run(job, RecordingContext(crash_on_save=True))
    result = engine.run(job, context := RecordingContext())  # the retry: upstream_id was never saved

    tasks = upstream_get(on_second_playground, "tasks?limit=100")["data"]
    assert len(tasks) == before + 1
    assert context.upstream_ids == [tasks[0]["task_id"]]
    assert tasks[0]["status"] == "succeeded"
    assert result.cost_actual == Decimal("0.1206")
    assert [o["name"] for o in context.outputs] == ["0.png"]


# --- Engine-level doubles ---------------------------------------------------------------------------


class RecordingContext:
    """The runner's side of the contract, recorded: reports, outputs, upstream ids, a stop switch."""

    def __init__(
        self, *, crash_on_save: bool = False, stop_after_checks: int | None = None, cancelled: bool = True
    ):
        self.reports, self.outputs, self.upstream_ids, self.progress_reports = [], [], [], []
        self.crash_on_save, self.stop_after_checks, self.checks = crash_on_save, stop_after_checks, 0
        self.cancelled = cancelled  # why it stops: the user cancelled, or another attempt took over

    def report(self, message: str) -> None:
        self.reports.append(message)

    def progress(self, fraction: float, *, step_done: bool = False) -> None:
        self.progress_reports.append(fraction)

    def should_stop(self) -> bool:
        self.checks += 1
        return self.stop_after_checks is not None and self.checks > self.stop_after_checks

    def was_cancelled(self) -> bool:
        return self.cancelled

    def save_output(self, name, content, content_type, **meta) -> None:
        self.outputs.append({"name": name, "content": content, "content_type": content_type, **meta})

    def save_upstream_id(self, upstream_id: str) -> None:
        if self.crash_on_save:
            raise RuntimeError("worker died between the upstream submit and saving its id")
        self.upstream_ids.append(upstream_id)


def job_of(task: Task, key: str | None, **changes) -> EngineJob:
    fields = {
        "task_id": task.pk,
        "owner_id": task.owner_id,
        "model_slug": task.model.slug,
        "kind": task.model.kind,
        "output_key": task.model.output_key,
        "roles": task.model.roles,
        "input_schema": task.model.input_schema,
        "input": task.input,
        "upstream_key": key,
        **changes,
    }
    return EngineJob(**fields)


def plain_job(key: str | None = "mv_live_fake_key_9f3a", **changes) -> EngineJob:
    fields = {
        "task_id": "task_0123456789abcdef01234567",
        "owner_id": 1,
        "model_slug": SEED,
        "kind": "image",
        "output_key": "images",
        "roles": {},
        "input_schema": {},
        "input": seed_input(),
        "upstream_key": key,
        **changes,
    }
    return EngineJob(**fields)


# --- The fake platform ------------------------------------------------------------------------------


def config_for(fake, **changes) -> MindVideoConfig:
    return MindVideoConfig(**{"base_url": fake.base_url, "poll_interval": 0.01, "max_retries": 2, **changes})


def test_it_submits_once_polls_and_downloads_into_our_storage(api, user, mindvideo):
    body, task = run_through_api(api)

    assert body["status"] == "succeeded", body["error"]
    assert money(body["cost_actual"]) == money("0.0987")  # what upstream charged, not our estimate
    [submit] = mindvideo.seen("submit")
    assert submit.body == {"model": SEED, "input": seed_input()}
    assert submit.headers["idempotency-key"] == idempotency_key(task.pk) == f"playground-{task.pk}"
    assert submit.headers["authorization"] == f"Bearer {mindvideo.key}"
    assert task.upstream_id == "task_up1"
    [stored] = task.output["images"]
    assert default_storage.open(stored["file"]).read() == png_bytes()
    assert (stored["width"], stored["height"], stored["content_type"]) == (8, 6, "image/png")
    assert messages(task) == [
        "Queued.",
        "Started.",
        "Submitted to MindVideo as task_up1.",
        "MindVideo: Warming up the fake GPU.",
        "MindVideo: processing.",
        "MindVideo: succeeded.",
        "Downloading output 1 of 1.",
        "Finished.",
    ]
    credential = UpstreamCredential.objects.get(user=user)
    assert credential.last_used_at is not None and credential.failing_since is None


@pytest.mark.parametrize(
    ("route", "status"), [("submit", 401), ("poll", 403), ("file", 401)], ids=["submit", "poll", "download"]
)
def test_it_fails_and_marks_the_key_when_upstream_rejects_it(api, user, mindvideo, route, status):
    mindvideo.replies[route].append(Reply(status, {"error": {"code": "invalid_key", "message": "No."}}))

    body, _ = run_through_api(api)

    assert body["status"] == "failed"
    assert body["error"] == {
        "code": "upstream_key_rejected",
        "message": (
            "The MindVideo platform rejected your MindVideo key: check or replace it on the Keys page."
        ),
    }
    assert body["output"] is None
    # Refused before the platform took the task: nothing billed. Refused a poll of a task it has: it
    # may still run and bill it, so the charge is not known yet (the reaper settles it). Refused the
    # download of work it had finished: its charge stands.
    expected = {"submit": 0, "poll": None, "file": money(mindvideo.cost_actual)}[route]
    assert (None if body["cost_actual"] is None else money(body["cost_actual"])) == expected
    assert len(mindvideo.seen(route)) == 1  # a refused key is not retried
    credential = UpstreamCredential.objects.get(user=user)
    assert credential.failing_since is not None
    assert "rejected" in credential.last_error


def test_a_stored_key_that_works_again_clears_its_failure(api, user, mindvideo):
    mindvideo.replies["submit"].append(Reply(401, {}))
    run_through_api(api)
    body, _ = run_through_api(api, prompt="again")

    assert body["status"] == "succeeded"
    credential = UpstreamCredential.objects.get(user=user)
    assert (credential.failing_since, credential.last_error) == (None, "")


def test_it_retries_a_rate_limit_and_then_succeeds(api, mindvideo):
    limited = Reply(
        429, {"error": {"code": "rate_limited", "message": "Slow down."}}, headers={"Retry-After": "0"}
    )
    mindvideo.replies["submit"].append(limited)
    mindvideo.replies["poll"].append(limited)

    body, task = run_through_api(api)

    assert body["status"] == "succeeded", body["error"]
    assert len(mindvideo.seen("submit")) == 2
    assert len(mindvideo.tasks) == 1  # the repeated submit replayed the same upstream task
    assert "MindVideo did not accept the task: it was busy (too many requests); trying again." in messages(
        task
    )


@pytest.mark.parametrize(
    ("reply", "code", "reason"),
    [
        (Reply(500, {"error": {"code": "internal"}}), "upstream_unavailable", "a server error (HTTP 500)"),
        (Reply(503, "<html>busy</html>", "text/html"), "upstream_unavailable", "a server error (HTTP 503)"),
        (Reply(429, {}), "upstream_rate_limited", "it was busy (too many requests)"),
        (Reply(200, "{not json", "application/json"), "upstream_bad_response", "could not be read as a task"),
        (Reply(200, {"data": []}), "upstream_bad_response", "could not be read as a task"),
        (Reply(200, {"task_id": "task_up1"}), "upstream_bad_response", "its answer had no task status"),
        (
            Reply(200, {"task_id": "../../admin", "status": "queued"}),
            "upstream_bad_response",
            "invalid task id",
        ),
    ],
    ids=["500", "503", "429", "malformed-json", "not-a-task", "no-status", "odd-task-id"],
)
def test_it_gives_up_after_bounded_retries_naming_the_reason(api, mindvideo, reply, code, reason):
    mindvideo.always["poll"] = reply

    body, _ = run_through_api(api)

    assert body["status"] == "failed"
    assert body["error"]["code"] == code
    assert body["error"]["message"].startswith("MindVideo did not report the task's status after 3 tries: ")
    assert reason in body["error"]["message"]
    assert body["cost_actual"] is None  # the platform has the task and may bill it: not known yet
    assert len(mindvideo.seen("poll")) == 3  # MINDVIDEO_MAX_RETRIES=2: one try and two retries


def test_it_retries_a_malformed_answer_and_then_succeeds(api, mindvideo):
    mindvideo.replies["poll"].append(Reply(200, "<html>oops</html>", "text/html"))

    body, _ = run_through_api(api)

    assert body["status"] == "succeeded", body["error"]
    assert len(mindvideo.seen("poll")) == 3  # the malformed one, processing, succeeded


def test_it_retries_a_slow_answer_and_then_fails_with_a_timeout(api, settings, mindvideo):
    settings.MINDVIDEO_TIMEOUT = 0.2
    mindvideo.always["submit"] = Reply(201, {}, delay=0.6)

    body, _ = run_through_api(api)

    assert body["status"] == "failed"
    assert body["error"] == {
        "code": "upstream_timeout",
        "message": "MindVideo did not accept the task after 3 tries: it did not answer within 0.2 s.",
    }
    assert len(mindvideo.seen("submit")) == 3


def test_it_retries_a_slow_answer_and_then_succeeds(api, settings, mindvideo):
    settings.MINDVIDEO_TIMEOUT = 0.2
    mindvideo.replies["poll"].append(Reply(200, {}, delay=0.6))

    body, _ = run_through_api(api)

    assert body["status"] == "succeeded", body["error"]


def test_it_fails_when_the_platform_cannot_be_reached(api, settings, mindvideo):
    settings.MINDVIDEO_BASE_URL = f"http://127.0.0.1:{free_port()}"

    body, _ = run_through_api(api)

    assert body["error"]["code"] == "upstream_unavailable"
    assert (
        body["error"]["message"]
        == "MindVideo did not accept the task after 3 tries: it could not be reached."
    )


def test_a_task_that_failed_upstream_fails_with_upstreams_message(api, mindvideo):
    mindvideo.plan = ["processing", "failed"]

    body, _ = run_through_api(api)

    assert body["status"] == "failed"
    assert body["error"] == mindvideo.error
    assert body["cost_actual"] == 0


def test_an_upstream_failure_about_the_platforms_own_key_does_not_blame_ours(api, user, mindvideo):
    mindvideo.plan = ["failed"]
    mindvideo.error = {"code": "upstream_key_rejected", "message": "Its own upstream refused its key."}

    body, _ = run_through_api(api)

    assert body["error"] == {"code": "upstream_failed", "message": "Its own upstream refused its key."}
    assert UpstreamCredential.objects.get(user=user).failing_since is None


def test_a_task_cancelled_upstream_fails_here(api, mindvideo):
    mindvideo.plan = ["processing", "cancelled"]

    body, _ = run_through_api(api)

    assert body["status"] == "failed"
    assert body["error"] == {
        "code": "upstream_cancelled",
        "message": "The task was cancelled on the MindVideo platform.",
    }


def test_a_refused_request_fails_at_once_with_upstreams_reason(api, mindvideo):
    mindvideo.replies["submit"].append(
        Reply(422, {"error": {"code": "invalid_input", "message": "Too long.", "field": "input.prompt"}})
    )

    body, _ = run_through_api(api)

    assert body["error"] == {
        "code": "upstream_refused",
        "message": "MindVideo refused the task: Prompt: Too long.",
    }
    assert len(mindvideo.seen("submit")) == 1


def test_it_fails_without_any_key_and_calls_nobody(api, settings, user, mindvideo):
    UpstreamCredential.objects.filter(user=user).delete()
    settings.MINDVIDEO_API_KEY = ""

    body, _ = run_through_api(api)

    assert body["error"]["code"] == "no_upstream_key"
    assert "add yours on the Keys page" in body["error"]["message"]
    assert mindvideo.requests == []


def test_it_gives_up_waiting_and_cancels_upstream(api, settings, mindvideo):
    settings.MINDVIDEO_MAX_WAIT = 0.2
    mindvideo.plan = ["processing"]

    body, task = run_through_api(api)

    assert body["error"]["code"] == "upstream_wait_exceeded"
    assert len(mindvideo.seen("cancel")) == 1
    assert mindvideo.tasks[task.upstream_id]["status"] == "cancelled"


# --- Downloads --------------------------------------------------------------------------------------


@pytest.fixture
def elsewhere(settings):
    """Another origin serving outputs, allowed past the fetcher's loopback rule."""
    server = FakeUpstream()
    settings.PLAYGROUND_FETCH_ALLOWED_HOSTS = [server.base_url.removeprefix("http://")]
    yield server
    server.close()


def test_it_sends_the_key_only_to_the_platforms_own_origin(api, mindvideo, elsewhere):
    mindvideo.file_auth = f"Bearer {mindvideo.key}"
    mindvideo.output_urls = lambda task_id: [
        f"{mindvideo.base_url}/files/{task_id}/0.png?token=t",
        f"{elsewhere.base_url}/files/{task_id}/1.png",
    ]

    body, task = run_through_api(api)

    assert body["status"] == "succeeded", body["error"]
    assert len(task.output["images"]) == 2
    assert mindvideo.seen("file")[0].headers["authorization"] == f"Bearer {mindvideo.key}"
    assert "authorization" not in elsewhere.seen("file")[0].headers


def test_a_redirect_off_the_platform_drops_the_key(api, mindvideo, elsewhere):
    mindvideo.files["/files/task_up1/0.png"] = Reply(
        302, b"", headers={"Location": f"{elsewhere.base_url}/files/task_up1/0.png"}
    )

    body, _ = run_through_api(api)

    assert body["status"] == "succeeded", body["error"]
    assert mindvideo.seen("file")[0].headers["authorization"] == f"Bearer {mindvideo.key}"
    assert "authorization" not in elsewhere.seen("file")[0].headers


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data/0.png", "http://10.0.0.7/0.png", "http://127.0.0.1:9/0.png"],
    ids=["metadata", "private", "loopback"],
)
def test_an_output_elsewhere_obeys_the_fetchers_address_rules(api, mindvideo, outbound_connections, url):
    mindvideo.output_urls = lambda task_id: [url]

    body, _ = run_through_api(api)

    assert body["error"]["code"] == "upstream_output_unavailable"
    assert body["error"]["message"].startswith("Output 1 could not be downloaded: ")
    platform_port = int(mindvideo.base_url.rsplit(":", 1)[1])
    assert {port for _, port in outbound_connections} == {platform_port}  # nothing else was contacted


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "no-content-length"])
def test_an_output_over_the_byte_cap_fails(api, settings, mindvideo, declared):
    settings.MINDVIDEO_MAX_DOWNLOAD_BYTES = 50
    mindvideo.files["/files/task_up1/0.png"] = Reply(200, png_bytes((64, 64)), "image/png", length=declared)

    body, _ = run_through_api(api)

    assert body["error"] == {
        "code": "upstream_output_too_large",
        "message": "Output 1 is larger than 50 bytes.",
    }


def test_an_output_slower_than_the_time_cap_fails(api, settings, mindvideo):
    settings.MINDVIDEO_DOWNLOAD_TIMEOUT = 0.1
    mindvideo.files["/files/task_up1/0.png"] = Reply(200, png_bytes(), "image/png", drip=0.05)

    body, _ = run_through_api(api)

    assert body["error"]["code"] == "upstream_output_too_slow"


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (Reply(404, {"error": {"code": "not_found"}}), "upstream_output_unavailable"),
        (Reply(200, "<html>a login page</html>", "image/png"), "upstream_bad_output"),
        (Reply(500, {}), "upstream_unavailable"),
    ],
    ids=["404", "not-an-image", "500-forever"],
)
def test_an_output_that_cannot_be_had_fails_the_task(api, mindvideo, reply, code):
    mindvideo.files["/files/task_up1/0.png"] = reply

    body, task = run_through_api(api)

    assert body["status"] == "failed"
    assert body["error"]["code"] == code
    assert money(body["cost_actual"]) == money(mindvideo.cost_actual)  # the platform had billed it
    assert messages(task)[-1] == (
        "MindVideo had billed the task before it failed here: its charge of $0.0987 stands."
    )


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://elsewhere.example:port/0.png", "upstream_bad_output"),
        ("file:///etc/passwd", "upstream_output_unavailable"),
        ("LOOP", "upstream_output_unavailable"),
    ],
    ids=["invalid", "file-scheme", "redirect-loop"],
)
def test_an_output_url_that_leads_nowhere_fails_the_task(api, mindvideo, url, code):
    if url == "LOOP":
        url = f"{mindvideo.base_url}/files/loop"
        mindvideo.files["/files/loop"] = Reply(302, b"", headers={"Location": "/files/loop"})
    mindvideo.output_urls = lambda task_id: [url]

    body, _ = run_through_api(api)

    assert body["error"]["code"] == code


def test_a_download_error_is_retried(api, mindvideo):
    mindvideo.replies["file"].append(Reply(502, {}))

    body, _ = run_through_api(api)

    assert body["status"] == "succeeded", body["error"]
    assert len(mindvideo.seen("file")) == 2


def test_success_without_outputs_is_a_failure(api, mindvideo):
    mindvideo.output_urls = lambda task_id: []

    body, _ = run_through_api(api)

    assert body["error"] == {
        "code": "upstream_bad_output",
        "message": "MindVideo reported success but returned no images.",
    }


def test_it_relays_the_platforms_progress_and_its_news_when_its_task_body_has_one(fake):
    fake.plan = [("processing", 0.25), ("processing", 0.25), ("processing", 0.75), "succeeded"]
    context = RecordingContext()

    MindVideoEngine(config_for(fake)).run(plain_job(), context)

    assert context.progress_reports == [0.25, 0.25, 0.75]  # at each poll (the runner keeps a few)
    # Its messages come at each step it reports, not only at its status changes.
    assert len(fake.seen("events")) == 3


@pytest.mark.parametrize("figure", [None, 1.5, -0.1, "half", True, float("nan")])
def test_without_a_usable_progress_from_the_platform_ours_stays_unknown(fake, figure):
    fake.plan = [("processing", figure), ("processing", figure), "succeeded"]
    context = RecordingContext()

    MindVideoEngine(config_for(fake)).run(plain_job(), context)

    assert context.progress_reports == []
    assert [o["name"] for o in context.outputs] == ["0.png"]


# --- The engine on its own: cancel, crash and resume, video, configuration ----------------------------


def test_a_cancel_here_cancels_upstream_and_stops(fake):
    fake.plan = ["processing"] * 50
    context = RecordingContext(stop_after_checks=3)

    with pytest.raises(EngineStopped) as stopped:
        MindVideoEngine(config_for(fake)).run(plain_job(), context)

    assert len(fake.seen("cancel")) == 1
    assert fake.tasks["task_up1"]["status"] == "cancelled"
    assert (stopped.value.reason, stopped.value.cost_actual) == ("Cancelled on MindVideo too", 0)


def test_a_takeover_leaves_the_upstream_task_running_for_the_new_attempt(fake):
    fake.plan = ["processing"] * 50
    context = RecordingContext(stop_after_checks=3, cancelled=False)  # another attempt has the task

    with pytest.raises(EngineStopped) as stopped:
        MindVideoEngine(config_for(fake)).run(plain_job(), context)

    assert fake.seen("cancel") == []
    assert fake.tasks["task_up1"]["status"] == "processing"
    assert stopped.value.cost_actual is None  # not this attempt's to say

    fake.tasks["task_up1"]["plan"] = ["succeeded"]
    context = RecordingContext()
    result = MindVideoEngine(config_for(fake)).run(plain_job(upstream_id="task_up1", attempt=2), context)
    assert result.cost_actual == Decimal("0.0987")  # the new attempt carried it on


def test_a_cancel_after_the_platform_finished_keeps_its_charge(fake):
    fake.plan = ["succeeded"]
    context = RecordingContext(stop_after_checks=2)  # before submitting, while waiting, then stop

    with pytest.raises(EngineStopped) as stopped:
        MindVideoEngine(config_for(fake)).run(plain_job(), context)

    assert stopped.value.reason == "Cancelled after MindVideo had finished the task"
    assert stopped.value.cost_actual == Decimal("0.0987")
    assert fake.seen("cancel") == [] and fake.seen("file") == []  # nothing left to cancel or fetch


def test_a_crash_between_submit_and_save_never_makes_a_second_upstream_task(fake):
    engine, job = MindVideoEngine(config_for(fake)), plain_job()

    with pytest.raises(RuntimeError, match="worker died"):
        engine.run(job, RecordingContext(crash_on_save=True))
    result = engine.run(job, context := RecordingContext())

    assert list(fake.tasks) == ["task_up1"]  # exactly one upstream task was ever created
    assert [s.headers["idempotency-key"] for s in fake.seen("submit")] == [idempotency_key(job.task_id)] * 2
    assert context.upstream_ids == ["task_up1"]
    assert result.cost_actual == Decimal("0.0987")


def test_a_task_started_again_resumes_its_upstream_task_without_submitting(fake):
    engine = MindVideoEngine(config_for(fake))
    with pytest.raises(RuntimeError):
        engine.run(plain_job(), RecordingContext(crash_on_save=True))  # as if it had been saved

    context = RecordingContext()
    engine.run(plain_job(upstream_id="task_up1", attempt=2), context)

    assert len(fake.seen("submit")) == 1
    assert context.upstream_ids == []
    assert context.reports[0] == "Resuming MindVideo task task_up1 (attempt 2)."
    assert [o["name"] for o in context.outputs] == ["0.png"]


@pytest.mark.parametrize(
    ("name", "content_type", "saved_as"),
    [
        ("clip", "video/webm", ("0.webm", "video/webm")),
        ("clip", "application/octet-stream", ("0.webm", "video/webm")),  # known by its signature
        ("clip.mp4", "binary/octet-stream", ("0.mp4", "video/mp4")),
    ],
)
def test_it_saves_videos_with_their_type(fake, name, content_type, saved_as):
    content = b"\x1aE\xdf\xa3webm" if saved_as[1] == "video/webm" else b"\0\0\0\x18ftypmp42"
    fake.output_key = "videos"
    fake.output_urls = lambda task_id: [f"{fake.base_url}/files/{task_id}/{name}"]
    fake.files[f"/files/task_up1/{name}"] = Reply(200, content, content_type)
    context = RecordingContext()

    MindVideoEngine(config_for(fake)).run(plain_job(kind="video", output_key="videos"), context)

    assert context.outputs == [{"name": saved_as[0], "content": content, "content_type": saved_as[1]}]


def test_a_video_that_is_not_a_video_is_refused(fake):
    fake.output_key = "videos"
    fake.output_urls = lambda task_id: [f"{fake.base_url}/files/{task_id}/clip.webm"]
    fake.files["/files/task_up1/clip.webm"] = Reply(200, "<html>Service Unavailable</html>", "video/webm")

    with pytest.raises(EngineError) as failure:
        MindVideoEngine(config_for(fake)).run(
            plain_job(kind="video", output_key="videos"), RecordingContext()
        )

    assert failure.value.code == "upstream_bad_output"
    assert failure.value.message.startswith("Output 1 is not usable: The file is not a video file")


@pytest.mark.parametrize(
    ("base_url", "api_url"),
    [
        ("https://api.mindvideo.ai", "https://api.mindvideo.ai/api/v1/tasks"),
        ("https://api.mindvideo.ai/", "https://api.mindvideo.ai/api/v1/tasks"),
        ("https://api.mindvideo.ai/api/v1", "https://api.mindvideo.ai/api/v1/tasks"),
        ("http://127.0.0.1:9000/api/v1/", "http://127.0.0.1:9000/api/v1/tasks"),
    ],
)
def test_the_base_url_may_end_in_api_v1(base_url, api_url):
    assert MindVideoConfig(base_url=base_url).api_url("tasks") == api_url


def test_a_base_url_that_is_not_http_fails_clearly(fake):
    with pytest.raises(EngineError) as failure:
        MindVideoEngine(config_for(fake, base_url="ftp://example.com")).run(plain_job(), RecordingContext())

    assert failure.value.code == "upstream_misconfigured"
    assert fake.requests == []
