"""Bodies over PLAYGROUND_MAX_BODY_BYTES are refused (413) before they are read: a multipart upload
is never parsed or spooled to disk, a chunked body (no length) is cut off once it goes over."""

import io
import json

import pytest
from django.urls import reverse

from playground.generations.models import Task

from .helpers import SEED, seed_input

MB = 1024 * 1024
BOUNDARY = "----playground-test"


class CountingStream:
    """A request body of `size` bytes made on demand, counting what the server reads of it."""

    def __init__(self, size: int, head: bytes = b""):
        self.size, self.head, self.read_bytes = size, head, 0

    def read(self, size: int = -1) -> bytes:
        left = self.size - self.read_bytes
        size = left if size is None or size < 0 else min(size, left)
        start = self.read_bytes
        self.read_bytes += size
        head = self.head[start : start + size]
        return head + b"x" * (size - len(head))

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


def multipart_head(field: str = "image_urls__file") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="big.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()


@pytest.fixture
def signed_in(client, user, catalog):
    client.force_login(user)
    return client


def test_a_200_mb_multipart_upload_is_refused_before_a_byte_is_read(signed_in, tmp_path, settings):
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)  # where Django would spool the file
    body = CountingStream(200 * MB, multipart_head())
    response = signed_in.generic(
        "POST",
        reverse("play", args=[SEED]),
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        **{"CONTENT_LENGTH": str(200 * MB), "wsgi.input": body},
    )
    assert response.status_code == 413
    assert body.read_bytes == 0
    assert list(tmp_path.iterdir()) == []
    page = response.content.decode()
    assert "This request is 200 MB; at most 32 MB can be sent at once, files included." in page
    assert not Task.objects.exists()


def test_the_run_form_gets_the_refusal_as_a_message_to_show(signed_in):
    body = CountingStream(200 * MB, multipart_head())
    response = signed_in.generic(
        "POST",
        reverse("play", args=[SEED]),
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
        headers={"HX-Request": "true"},
        **{"CONTENT_LENGTH": str(200 * MB), "wsgi.input": body},
    )
    assert response.status_code == 413
    html = response.content.decode()
    assert html.startswith('<div class="alert" role="alert" data-form-error>')
    assert "at most 32 MB" in html and "<html" not in html


def test_the_api_answers_413_in_its_error_shape_without_reading(client, key):
    body = CountingStream(200 * MB)
    response = client.generic(
        "POST",
        "/api/v1/tasks",
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
        **{"CONTENT_LENGTH": str(200 * MB), "wsgi.input": body},
    )
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "body_too_large" and error["request_id"] == response["X-Request-Id"]
    assert body.read_bytes == 0


def chunked(client, key, stream, **headers):
    return client.generic(
        "POST",
        "/api/v1/tasks",
        headers={"Authorization": f"Bearer {key}", **headers},
        **{
            "CONTENT_TYPE": "application/json",
            "HTTP_TRANSFER_ENCODING": "chunked",
            "wsgi.input": stream,
            "wsgi.input_terminated": True,
        },
    )


def test_a_chunked_body_is_cut_off_once_it_goes_over_the_limit(client, key, settings):
    settings.PLAYGROUND_MAX_BODY_BYTES = 1 * MB
    body = CountingStream(200 * MB)
    response = chunked(client, key, body)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"
    assert MB < body.read_bytes <= MB + 64 * 1024


def test_a_chunked_body_under_the_limit_is_read_like_any_other(
    client, key, catalog, django_capture_on_commit_callbacks
):
    raw = json.dumps({"model": SEED, "input": seed_input()}).encode()
    with django_capture_on_commit_callbacks(execute=True):
        response = chunked(client, key, io.BytesIO(raw))
    assert response.status_code == 201, response.content
    assert Task.objects.get().input == seed_input()


def test_a_body_at_the_limit_is_read(client, key, catalog, settings):
    raw = json.dumps({"model": SEED, "input": seed_input()}).encode()
    settings.PLAYGROUND_MAX_BODY_BYTES = len(raw)
    response = client.post(
        "/api/v1/tasks", raw, content_type="application/json", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 201
