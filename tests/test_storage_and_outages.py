"""Where files are kept (PLAYGROUND_STORAGE_URL), and what people see while a shared part is down:
a task whose outputs the store refuses fails saying so, a request while the database or the bucket
does not answer is a 503 saying to try again shortly, and the worker waits out a database that is
not there.

The failures are real ones: a media folder that cannot exist (its parent is a regular file), a
bucket on a 127.0.0.1 port nothing listens on, a database file in a folder that does not exist (on
PostgreSQL, a database that does not exist). The bucket that answers is a small fake on 127.0.0.1.
"""

import hashlib
import threading
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import default_storage
from django.core.management import get_commands
from django.db import connection
from storages.backends.s3 import S3Storage

from playground.generations.jobs import run_task
from playground.generations.models import Status, Task
from playground.generations.sharing import share_task
from playground.storage import storages_setting

from .conftest import WORKER
from .helpers import SEED, data_uri, solid_png, wait_for

# --- PLAYGROUND_STORAGE_URL ----------------------------------------------------------------------


def test_it_keeps_files_in_the_local_folder_without_a_storage_url():
    assert storages_setting("") == {"BACKEND": "django.core.files.storage.FileSystemStorage"}


def test_it_reads_the_bucket_prefix_endpoint_region_and_credentials_from_the_url():
    setting = storages_setting(
        "s3://AKIA%2FTEST:s%3Acr%40t%2Bkey@media-bucket/play/ground"
        "?endpoint=http://127.0.0.1:9000&region=eu-central-1"
    )
    assert setting["BACKEND"] == "storages.backends.s3.S3Storage"
    options = setting["OPTIONS"]
    assert options["bucket_name"] == "media-bucket"
    assert options["location"] == "play/ground"
    assert options["endpoint_url"] == "http://127.0.0.1:9000"
    assert options["region_name"] == "eu-central-1"
    assert (options["access_key"], options["secret_key"]) == ("AKIA/TEST", "s:cr@t+key")
    assert options["file_overwrite"] is False  # a name taken gets a suffix, as on disk


def test_a_bucket_url_without_credentials_leaves_them_to_boto3():
    options = storages_setting("s3://media-bucket")["OPTIONS"]
    assert (options["bucket_name"], options["location"]) == ("media-bucket", "")
    assert "access_key" not in options and "secret_key" not in options
    assert options["endpoint_url"] is None and options["region_name"] is None


@pytest.mark.parametrize(
    ("addressing", "expected"),
    [
        ("path", "http://minio.test:9000/media-bucket/play/a.png"),
        ("virtual", "http://media-bucket.minio.test:9000/play/a.png"),
    ],
)
def test_the_addressing_option_shapes_the_bucket_urls_which_are_signed_with_sigv4(addressing, expected):
    # Building a URL sends nothing: the storage signs it locally.
    setting = storages_setting(
        f"s3://KEY:SECRET@media-bucket/play?endpoint=http://minio.test:9000&region=us-east-1"
        f"&addressing={addressing}"
    )
    url = S3Storage(**setting["OPTIONS"]).url("a.png")
    assert url.split("?")[0] == expected
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].startswith("KEY/")


@pytest.mark.parametrize(
    "url",
    [
        "https://media-bucket.s3.amazonaws.com/play",
        "file:///srv/media",
        "s3:///no-bucket",
        "s3://media-bucket?endpoint=http://127.0.0.1:9000&acl=public-read",
    ],
)
def test_a_storage_url_it_cannot_use_stops_the_start_naming_the_setting(url):
    with pytest.raises(ImproperlyConfigured, match="PLAYGROUND_STORAGE_URL"):
        storages_setting(url)


def test_an_unknown_option_is_named():
    with pytest.raises(ImproperlyConfigured, match="unknown option 'acl'"):
        storages_setting("s3://media-bucket?acl=public-read")


# --- A store that refuses the outputs --------------------------------------------------------------


@pytest.fixture
def failing_disk(settings, tmp_path):
    """The media folder lies under a regular file: every save raises NotADirectoryError (chmod
    would not do: tests may run as root). One retry, so the back-off takes a second."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the media folder's parent should be")
    settings.MEDIA_ROOT = blocker / "media"
    settings.PLAYGROUND_STORAGE_SAVE_RETRIES = 1
    return settings.MEDIA_ROOT


def test_a_task_whose_outputs_cannot_be_saved_fails_saying_so_and_charges_nothing(api, failing_disk):
    task_id = api.submit().json()["task_id"]
    body = api.get(f"/api/v1/tasks/{task_id}").json()
    assert body["status"] == "failed"
    assert body["error"] == {
        "code": "storage_unavailable",
        "message": "The output 0.png could not be saved: the file store did not answer after 2 tries "
        "(NotADirectoryError).",
    }
    assert body["output"] is None
    assert body["cost_actual"] == 0
    task = Task.objects.get(pk=task_id)
    assert (task.status, task.cost_actual, task.output) == (Status.FAILED, Decimal(0), None)


def test_a_submit_while_the_bucket_does_not_answer_is_a_503_and_creates_nothing(api, bucket_down):
    api.client.raise_request_exception = False  # answered by handler500, as in production
    response = api.submit(image_urls=[data_uri(solid_png())])  # the image is stored at submit
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    error = response.json()["error"]
    assert error["code"] == "file_store_unavailable"
    assert error["message"] == "The file store is not answering. Try again in a few seconds."
    assert not Task.objects.exists()


def test_a_task_whose_input_file_cannot_be_read_fails_saying_so_and_charges_nothing(api, queue_only, request):
    # The reference image is stored at submit; by the time a worker starts the task the file store
    # (now a bucket, as on another host) does not answer.
    task_id = api.submit(image_urls=[data_uri(solid_png())]).json()["task_id"]
    request.getfixturevalue("bucket_down")
    assert run_task.call(task_id) == Status.FAILED
    body = api.get(f"/api/v1/tasks/{task_id}").json()
    assert (body["status"], body["output"], body["cost_actual"]) == ("failed", None, 0)
    assert body["error"] == {
        "code": "storage_unavailable",
        "message": "The file store did not answer (EndpointConnectionError): the task's files could not "
        "be read.",
    }


# --- The database not answering --------------------------------------------------------------------


@contextmanager
def database_unreachable():
    """Until the block ends, this process's database connection is closed and cannot be opened
    again: SQLite's file is looked for in a folder that does not exist, PostgreSQL's database under
    a name that does not exist. Every query raises OperationalError, as while the database restarts."""
    name = connection.settings_dict["NAME"]
    missing = "/nonexistent/db.sqlite3" if connection.vendor == "sqlite" else f"{name}_gone"
    connection.close()
    connection.settings_dict["NAME"] = missing
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = name


# The connection is closed mid-test: outside a test transaction, which would not survive that.
OUTAGE = pytest.mark.django_db(transaction=True)


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    client.raise_request_exception = False  # answered by handler500, as in production
    return client


@OUTAGE
def test_the_api_answers_503_with_retry_after_while_the_database_is_down(api, signed_in):
    task_id = api.submit().json()["task_id"]
    with database_unreachable():
        response = api.get(f"/api/v1/tasks/{task_id}")  # as the OpenAPI document says it may
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    error = response.json()["error"]
    assert error["code"] == "database_unavailable"
    assert error["message"] == (
        "The database is not answering (it may be restarting). Try again in a few seconds."
    )
    assert error["request_id"] == response["X-Request-Id"]
    assert api.get(f"/api/v1/tasks/{task_id}").json()["status"] == "succeeded"  # back once it is


@OUTAGE
def test_a_page_answers_503_back_in_a_moment_while_the_database_is_down(signed_in):
    with database_unreachable():
        response = signed_in.get("/history?page=2", headers={"X-Request-Id": "req_outage_page1"})
    html = response.content.decode()
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "<html" in html and "<h1>Back in a moment</h1>" in html
    assert "The database is not answering (it may be restarting)." in html
    assert "req_outage_page1" in html
    # Only read: nothing was lost, and the page tries again by itself (and on Try again).
    assert "not saved" not in html
    assert '<meta http-equiv="refresh" content="5">' in html
    assert '<a class="button primary" href="/history?page=2">Try again</a>' in html
    # Who is signed in is not known without the database: no Sign in that reads as a sign-out.
    assert "Sign in" not in html and "Sign out" not in html
    assert signed_in.get("/").status_code == 200  # back once it is


@OUTAGE
def test_a_form_sent_without_javascript_while_the_database_is_down_is_said_to_be_lost(signed_in):
    with database_unreachable():
        response = signed_in.post(f"/play/{SEED}", {"prompt": "a fox"})
    html = response.content.decode()
    assert response.status_code == 503 and "<h1>Back in a moment</h1>" in html
    assert "What you sent was not saved: send it again then." in html
    assert 'http-equiv="refresh"' not in html and ">Try again</a>" not in html  # it would resend


@OUTAGE
def test_an_htmx_request_while_the_database_is_down_gets_only_the_message(signed_in):
    with database_unreachable():
        submit = signed_in.post(f"/play/{SEED}", {"prompt": "a fox"}, headers={"HX-Request": "true"})
        poll = signed_in.get("/", headers={"HX-Request": "true"})
    for response in (submit, poll):
        html = response.content.decode()
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        assert html.startswith('<div class="alert" role="alert" data-form-error>')
        assert "The database is not answering" in html
        assert "<html" not in html and "Back in a moment" not in html
    assert "send it again then (the form keeps what you typed)." in submit.content.decode()
    assert "send it again" not in poll.content.decode()  # a poll sent nothing


# --- Files from a bucket ---------------------------------------------------------------------------


class FakeBucket:
    """An S3-compatible bucket on 127.0.0.1, as far as reading goes: HEAD and GET of the objects in
    `objects` (by key, path-style addressing), 404 for any other. `requests`: (method, key)."""

    def __init__(self, name: str):
        self.name, self.objects, self.requests = name, {}, []
        bucket = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):
                pass

            def do_HEAD(self):
                self.answer(with_body=False)

            def do_GET(self):
                self.answer(with_body=True)

            def answer(self, with_body: bool) -> None:
                key = urlsplit(self.path).path.removeprefix(f"/{bucket.name}/")
                bucket.requests.append((self.command, key))
                content = bucket.objects.get(key)
                self.send_response(404 if content is None else 200)
                self.send_header("Content-Length", str(len(content or b"")))
                if content is not None:
                    self.send_header("ETag", f'"{hashlib.sha256(content).hexdigest()[:32]}"')
                self.end_headers()
                if with_body and content:
                    self.wfile.write(content)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def moved_to_a_bucket(api, settings):
    """A task that ran with the local folder, whose files were then copied to a bucket that the
    installation now uses, with PLAYGROUND_S3_PRESIGNED: (task, its image's URL, the bucket)."""
    task_id = api.submit().json()["task_id"]
    url = api.get(f"/api/v1/tasks/{task_id}").json()["output"]["images"][0]["url"]
    task = Task.objects.get(pk=task_id)
    bucket = FakeBucket("media")
    stored = task.output["images"][0]["file"]
    with default_storage.open(stored, "rb") as handle:
        bucket.objects[stored] = handle.read()
    default = storages_setting(f"s3://KEY:SECRET@media?endpoint={bucket.endpoint}&region=us-east-1")
    settings.STORAGES = {**settings.STORAGES, "default": default}
    settings.PLAYGROUND_S3_PRESIGNED = True
    settings.PLAYGROUND_S3_PRESIGNED_TTL = 600
    yield task, url, bucket
    bucket.close()


def test_a_file_url_redirects_to_a_presigned_bucket_url_naming_type_and_file(client, moved_to_a_bucket):
    task, url, bucket = moved_to_a_bucket
    response = client.get(url)
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}" == bucket.endpoint
    assert location.path == f"/media/outputs/{task.pk}/1/0.png"
    query = parse_qs(location.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["600"]
    assert query["response-content-type"] == ["image/png"]
    assert query["response-content-disposition"] == [f'inline; filename="{task.pk}-0.png"']
    assert response["Cache-Control"] == "private, max-age=300"  # half the URL's life
    assert ("GET", f"outputs/{task.pk}/1/0.png") not in bucket.requests  # the bytes come from the bucket


def test_download_asks_the_bucket_for_an_attachment(client, moved_to_a_bucket):
    # The page's Download link: once a redirect leads to the bucket's origin, a browser ignores the
    # link's `download` attribute, so only the bucket's answer can make it a download.
    task, url, _ = moved_to_a_bucket
    location = urlsplit(client.get(f"{url}&download")["Location"])
    disposition = parse_qs(location.query)["response-content-disposition"]
    assert disposition == [f'attachment; filename="{task.pk}-0.png"']


def test_a_shared_file_is_streamed_from_the_bucket_never_redirected(client, moved_to_a_bucket):
    # A presigned URL would outlive an unshare by its lifetime.
    task, _, bucket = moved_to_a_bucket
    share = share_task(task).share
    response = client.get(f"/s/{share.token}/files/0.png")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == bucket.objects[f"outputs/{task.pk}/1/0.png"]
    assert response["Content-Type"] == "image/png"


# --- The worker -------------------------------------------------------------------------------------


def test_db_worker_is_ours():
    assert get_commands()["db_worker"] == "playground.generations"


@pytest.mark.worker
@pytest.mark.sqlite  # the worker reaches the SQLite file through a folder that appears later
@pytest.mark.django_db(transaction=True)
def test_a_worker_started_while_the_database_is_not_there_waits_and_then_runs_the_queue(api, spawn, tmp_path):
    task_id = api.submit().json()["task_id"]
    database = Path(connection.settings_dict["NAME"])
    folder = tmp_path / "database-folder"  # not there yet: the worker cannot open the database
    # --skip-checks: on SQLite, Django's system checks open the database (is JSON supported?)
    # before the worker's loop starts, and it is the loop that waits; on PostgreSQL they do not.
    worker = spawn(*WORKER, "--skip-checks", DATABASE_URL=f"sqlite:///{folder / database.name}")
    assert wait_for(lambda: "the database is not answering" in worker.log.read_text(), timeout=20)
    assert worker.poll() is None, "the worker gave up"
    folder.symlink_to(database.parent)  # the database is back
    assert wait_for(lambda: Task.objects.get(pk=task_id).is_terminal), "the worker never ran the task"
    assert Task.objects.get(pk=task_id).status == Status.SUCCEEDED
    assert worker.poll() is None
