"""Uploads and data URIs are stored once as owner-only input files; the task keeps a small
reference that the task page, re-run, copy-as-code, compare and the engines understand."""

import hashlib
import io
import json
import tracemalloc

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from playground.engines.local import LocalEngine
from playground.generations.inputs import input_url, parse_reference
from playground.generations.models import InputFile, Status, Task
from playground.keys.credentials import store_upstream_key
from playground.keys.services import issue_key

from .helpers import SEED, data_uri, seed_input, solid_png
from .html_forms import BrowserForm
from .test_local_engine import FakeContext, make_job
from .upstream import FakeUpstream


def noise_png(size=(600, 600), seed=0) -> bytes:
    """A PNG that does not compress: about 3 bytes a pixel."""
    image = Image.frombytes("RGB", size, hashlib.shake_256(str(seed).encode()).digest(size[0] * size[1] * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def stored_file(reference: str) -> InputFile:
    parsed = parse_reference(reference)
    assert parsed is not None, reference
    return InputFile.objects.get(pk=parsed.id, name=parsed.name)


def read(row: InputFile) -> bytes:
    with default_storage.open(row.file, "rb") as handle:
        return handle.read()


@pytest.fixture
def signed_in(client, user, catalog, django_capture_on_commit_callbacks):
    """Alice in the browser; her submits run their task (the immediate backend) before returning."""
    client.force_login(user)
    client.capture = django_capture_on_commit_callbacks
    return client


def upload_through_the_form(client, content: bytes, name: str = "photo.png") -> Task:
    page = client.get(reverse("play", args=[SEED]))
    form = BrowserForm(page.content.decode(), "run-form")
    form.type("prompt", "a fox")
    form.attach("image_urls__file", SimpleUploadedFile(name, content, "image/png"))
    with client.capture(execute=True):
        response = client.post(reverse("play", args=[SEED]), form.submission())
    assert response.status_code == 302, response.content.decode()[-2000:]
    return Task.objects.get(pk=response.url.rsplit("/", 1)[-1])


# --- Storing ---------------------------------------------------------------------------------------


def test_an_upload_becomes_one_stored_input_file_and_the_task_keeps_a_reference(signed_in, user):
    content = noise_png()
    assert len(content) > 1_000_000
    task = upload_through_the_form(signed_in, content)

    [reference] = task.input["image_urls"]
    assert reference.startswith("http://testserver/inputs/in_") and reference.endswith("/photo.png")
    row = stored_file(reference)
    assert (row.owner, row.size, row.content_type) == (user, len(content), "image/png")
    assert read(row) == content
    assert InputFile.objects.count() == 1
    assert len(json.dumps(task.input)) < 300  # the row: not 1.4 MB of base64
    assert task.status == Status.SUCCEEDED


def test_an_api_data_uri_becomes_one_stored_input_file(api, user):
    content = noise_png()
    response = api.submit(image_urls=[data_uri(content)])
    assert response.status_code == 201, response.json()

    task = Task.objects.get(pk=response.json()["task_id"])
    [reference] = task.input["image_urls"]
    row = stored_file(reference)
    assert (row.owner, row.name, read(row)) == (user, "image.png", content)
    assert len(json.dumps(task.input)) < 300
    assert task.status == Status.SUCCEEDED


def test_the_same_bytes_are_one_file_however_often_they_are_sent(api, signed_in):
    content = solid_png()
    api.submit(image_urls=[data_uri(content)])
    api.submit(prompt="again", image_urls=[data_uri(content), data_uri(content)])
    upload_through_the_form(signed_in, content)
    assert InputFile.objects.count() == 1
    references = {ref for task in Task.objects.all() for ref in task.input["image_urls"]}
    assert len({stored_file(ref).pk for ref in references}) == 1


def test_a_replay_with_the_same_data_uri_is_the_same_task(api):
    body = seed_input(image_urls=[data_uri(noise_png())])
    first = api.submit(headers={"Idempotency-Key": "k-1"}, **body)
    again = api.submit(headers={"Idempotency-Key": "k-1"}, **body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["task_id"] == first.json()["task_id"]
    assert Task.objects.count() == 1 and InputFile.objects.count() == 1

    other = api.submit(headers={"Idempotency-Key": "k-1"}, **seed_input(image_urls=[data_uri(solid_png())]))
    assert other.status_code == 409


def test_a_resent_form_with_the_same_upload_is_the_same_task(signed_in):
    page = signed_in.get(reverse("play", args=[SEED]))
    form = BrowserForm(page.content.decode(), "run-form")
    form.type("prompt", "twice")
    content = noise_png()
    form.attach("image_urls__file", SimpleUploadedFile("photo.png", content, "image/png"))
    first = signed_in.post(reverse("play", args=[SEED]), form.submission())
    form.control("image_urls__file").files = [SimpleUploadedFile("photo.png", content, "image/png")]
    again = signed_in.post(reverse("play", args=[SEED]), form.submission())  # the same form token
    assert first.status_code == again.status_code == 302 and first.url == again.url
    assert Task.objects.count() == 1 and InputFile.objects.count() == 1


def test_a_refused_submit_stores_nothing(api):
    good, bad = data_uri(solid_png()), data_uri(b"<!doctype html>", "image/png")
    response = api.submit(image_urls=[good, bad])
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "input.image_urls[1]"
    assert not InputFile.objects.exists() and not Task.objects.exists()


def test_a_video_is_stored_as_the_container_it_is(api, user, catalog, queue_only):
    webm = b"\x1a\x45\xdf\xa3" + bytes(60)
    data = {**catalog["wan2-7-videoedit"].example_input, "video_urls": [data_uri(webm, "video/x-whatever")]}
    response = api.post("/api/v1/tasks", {"model": "wan2-7-videoedit", "input": data})
    assert response.status_code == 201, response.json()
    row = stored_file(Task.objects.get().input["video_urls"][0])
    assert (row.name, row.content_type, read(row)) == ("video.webm", "video/webm", webm)


# --- Who can read them -------------------------------------------------------------------------------


def test_an_input_file_is_its_owners_and_a_signed_links(client, api, user, other_user, key):
    content = solid_png()
    api.submit(image_urls=[data_uri(content)])
    row = InputFile.objects.get()
    path = input_url("", row.pk, row.name)

    assert client.get(path).status_code == 404  # nobody
    assert (
        client.get(path, headers={"Authorization": f"Bearer {issue_key(other_user).secret}"}).status_code
        == 404
    )
    client.force_login(other_user)
    assert client.get(path).status_code == 404  # someone else
    client.logout()

    by_key = client.get(path, headers={"Authorization": f"Bearer {key}"})
    assert by_key.status_code == 200 and b"".join(by_key.streaming_content) == content
    assert by_key["Content-Type"] == "image/png"
    assert "sandbox" in by_key["Content-Security-Policy"]
    client.force_login(user)
    assert client.get(path).status_code == 200
    client.logout()

    signed = input_url("", row.pk, row.name, signed=True)
    anyone = client.get(signed)
    assert anyone.status_code == 200 and b"".join(anyone.streaming_content) == content
    assert client.get(signed.replace("token=", "token=1")).status_code == 404
    assert client.get(input_url("", row.pk, "other.png", signed=True)).status_code == 404


def test_someone_elses_input_cannot_be_borrowed_by_its_url(api, other_api, user, other_user):
    api.submit(image_urls=[data_uri(solid_png())])
    theirs = Task.objects.get().input["image_urls"][0]

    response = other_api.submit(image_urls=[theirs])
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["field"], error["errors"][0]["code"]) == ("input.image_urls[0]", "input_not_found")
    assert Task.objects.count() == 1


def test_a_signed_link_to_someone_elses_input_gives_the_submitter_a_copy(api, other_api, user, other_user):
    content = solid_png()
    api.submit(image_urls=[data_uri(content)])
    row = InputFile.objects.get()

    response = other_api.submit(image_urls=[input_url("http://testserver", row.pk, row.name, signed=True)])
    assert response.status_code == 201, response.json()
    copy = stored_file(Task.objects.get(pk=response.json()["task_id"]).input["image_urls"][0])
    assert copy.owner == other_user and copy.pk != row.pk and read(copy) == content


def test_a_reference_to_a_file_that_is_gone_is_refused_at_submit(api):
    api.submit(image_urls=[data_uri(solid_png())])
    reference = Task.objects.get().input["image_urls"][0]
    default_storage.delete(stored_file(reference).file)
    response = api.submit(image_urls=[reference])
    assert response.status_code == 422
    assert "not stored here" in response.json()["error"]["message"]


# --- Where they are shown ------------------------------------------------------------------------------


def test_the_task_page_and_its_code_show_the_reference_not_base64(signed_in, user):
    content = noise_png()
    task = upload_through_the_form(signed_in, content)
    reference = task.input["image_urls"][0]
    response = signed_in.get(reverse("task", args=[task.pk]))
    html = response.content.decode()

    assert "base64," not in html
    assert len(response.content) < 150_000
    assert reference in html  # in the form, to run it again
    row = stored_file(reference)
    signed = f"http://testserver/inputs/{row.pk}/{row.name}?token="
    assert html.count(signed) == 3  # curl, Python, JavaScript: readable wherever they run


def test_re_run_carries_the_reference_and_makes_no_new_file(signed_in, user):
    task = upload_through_the_form(signed_in, noise_png())
    page = signed_in.get(reverse("play", args=[SEED]) + f"?from={task.pk}")
    assert "base64," not in page.content.decode()
    form = BrowserForm(page.content.decode(), "run-form")
    assert form.control("image_urls").value == task.input["image_urls"][0]

    response = signed_in.post(reverse("play", args=[SEED]), form.submission())
    assert response.status_code == 302
    rerun = Task.objects.get(pk=response.url.rsplit("/", 1)[-1])
    assert rerun.pk != task.pk and rerun.input["image_urls"] == task.input["image_urls"]
    assert InputFile.objects.count() == 1


def test_compare_shows_the_reference(signed_in, api):
    api.submit(image_urls=[data_uri(noise_png())])
    api.submit(prompt="another", image_urls=[data_uri(solid_png())])
    ids = list(Task.objects.values_list("pk", flat=True))
    html = signed_in.get(reverse("compare"), {"ids": ids}).content.decode()
    assert "base64," not in html
    assert "/inputs/in_" in html


# --- Engines ----------------------------------------------------------------------------------------


def test_the_local_engine_renders_a_stored_input_as_it_would_the_data_uri(api, catalog):
    reference_image = data_uri(solid_png((20, 200, 40)))
    data = seed_input(image_urls=[reference_image])  # no seed: the task id is the take
    response = api.submit(**data)
    task = Task.objects.get(pk=response.json()["task_id"])
    assert task.status == Status.SUCCEEDED, task.error
    with default_storage.open(task.output["images"][0]["file"], "rb") as handle:
        stored_run = handle.read()

    inline = FakeContext()
    LocalEngine().run(make_job(catalog[SEED], data, task_id=task.pk), inline)
    assert stored_run == inline.outputs[0].content


def test_a_task_whose_input_file_vanished_fails_naming_the_field(
    api, queue_only, django_capture_on_commit_callbacks
):
    from playground.generations.jobs import run_task

    response = api.submit(image_urls=[data_uri(solid_png())])
    task = Task.objects.get(pk=response.json()["task_id"])
    default_storage.delete(stored_file(task.input["image_urls"][0]).file)
    run_task.call(task.pk)
    task.refresh_from_db()
    assert task.status == Status.FAILED
    assert task.error["code"] == "input_unavailable"
    assert task.error["message"].startswith("Reference images, item 1: ")


@pytest.fixture
def upstream(settings, user):
    """Tasks run on the `mindvideo` engine against the fake platform, with the user's key."""
    fake = FakeUpstream()
    settings.PLAYGROUND_ENGINE = "mindvideo"
    settings.MINDVIDEO_BASE_URL = fake.base_url
    settings.MINDVIDEO_POLL_INTERVAL = 0.01
    store_upstream_key(user, fake.key)
    yield fake
    fake.close()


def test_mindvideo_gets_a_stored_input_inline_when_this_server_has_no_public_url(api, upstream):
    content = solid_png()
    response = api.submit(image_urls=[data_uri(content), "https://example.com/b.png"])
    task = Task.objects.get(pk=response.json()["task_id"])
    assert task.status == Status.SUCCEEDED, task.error
    assert task.input["image_urls"][0].startswith("http://testserver/inputs/")
    [submit] = upstream.seen("submit")
    assert submit.body["input"]["image_urls"] == [data_uri(content), "https://example.com/b.png"]


def test_mindvideo_gets_a_signed_url_it_can_fetch_when_this_server_is_public(api, upstream, client, settings):
    settings.PLAYGROUND_PUBLIC_URL = "https://play.example.com"
    content = solid_png()
    response = api.submit(image_urls=[data_uri(content)])
    task = Task.objects.get(pk=response.json()["task_id"])
    assert task.status == Status.SUCCEEDED, task.error
    [submit] = upstream.seen("submit")
    [url] = submit.body["input"]["image_urls"]
    assert url.startswith("https://play.example.com/inputs/in_") and "?token=" in url
    fetched = client.get(url.removeprefix("https://play.example.com"))  # no session, no key: the platform
    assert fetched.status_code == 200 and b"".join(fetched.streaming_content) == content


def test_mindvideo_gets_it_inline_when_told_to_even_with_a_public_url(api, upstream, settings):
    settings.PLAYGROUND_PUBLIC_URL = "https://play.example.com"
    settings.MINDVIDEO_INLINE_INPUTS = True
    content = solid_png()
    api.submit(image_urls=[data_uri(content)])
    [submit] = upstream.seen("submit")
    assert submit.body["input"]["image_urls"] == [data_uri(content)]


# --- Memory ----------------------------------------------------------------------------------------


def test_a_submit_holds_no_second_copy_of_its_data_uris(rf, key, catalog, queue_only):
    """Once the body is read, its data URIs are decoded in steps into temporary files, never
    copied into strings: json.loads alone would hold it twice more (its text, then every string)."""
    from playground.api.views import tasks

    def request_for(body: bytes):
        request = rf.post(
            "/api/v1/tasks", body, "application/json", headers={"Authorization": f"Bearer {key}"}
        )
        request.request_id = "req_memory"
        assert request.body == body  # read before measuring, as Django reads it before the view
        return request

    warm_up = json.dumps({"model": SEED, "input": seed_input(image_urls=[data_uri(solid_png())])})
    assert tasks(request_for(warm_up.encode())).status_code == 201  # first-time imports, URL patterns
    images = [data_uri(noise_png(seed=i)) for i in range(4)]
    body = json.dumps({"model": SEED, "input": seed_input(prompt="measured", image_urls=images)}).encode()
    del images
    request = request_for(body)
    tracemalloc.start()
    try:
        response = tasks(request)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 201, response.content
    assert len(body) > 5_000_000 and InputFile.objects.count() == 5
    assert peak < 0.5 * len(body), f"the submit held {peak / len(body):.2f}x its body more"


# --- Guests on a demo pass -------------------------------------------------------------------------


def test_a_guests_upload_is_the_pass_owners_file_and_re_runs_for_the_guest(
    user, catalog, django_capture_on_commit_callbacks
):
    from django.test import Client

    from playground.access.passes import create_pass, pass_token

    from .helpers import enter_demo

    demo = create_pass(user, "Team demo", [SEED], spend_cap=5, hours=2)
    guest, other_guest = Client(), Client()
    for browser in (guest, other_guest):
        enter_demo(browser, reverse("demo", args=[pass_token(demo)]))
    guest.capture = django_capture_on_commit_callbacks
    task = upload_through_the_form(guest, solid_png())
    row = stored_file(task.input["image_urls"][0])
    assert row.owner == user and task.demo_pass == demo

    page = guest.get(reverse("play", args=[SEED]) + f"?from={task.pk}")
    form = BrowserForm(page.content.decode(), "run-form")
    with django_capture_on_commit_callbacks(execute=True):
        response = guest.post(reverse("play", args=[SEED]), form.submission())
    assert response.status_code == 302
    assert Task.objects.exclude(pk=task.pk).get().input["image_urls"] == task.input["image_urls"]
    # Only the pass's owner reads the file itself (or a signed link): not a guest, not another one.
    assert guest.get(input_url("", row.pk, row.name)).status_code == 404
    assert other_guest.get(input_url("", row.pk, row.name)).status_code == 404
