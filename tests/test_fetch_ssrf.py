"""The SSRF table: every way of pointing the fetcher at our own network, or at a hostile body, is
refused with the right code, and nothing is fetched from the target.

Only 127.0.0.1 is ever contacted. DNS is the fake resolver (`fake_dns`); "the network" is a
127.0.0.1 server in the allow-list (`http_server`), plus a `trap` server that is not, and must never
receive a request. `outbound_connections` lists every TCP connection made.
"""

import base64
import io
import struct
import threading
import time
import zlib
from dataclasses import dataclass

import pytest
from PIL import Image

from playground.engines import fetch
from playground.engines.fetch import FetchError
from playground.generations.models import Task

from .fixtures_http import Reply, fetch_media
from .helpers import SEED, seed_input

MAX_PIXELS = 50_000_000
MB = 1024 * 1024


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A real, valid 1-bit PNG of width x height pixels that compresses to ~50 KB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = (b"\0" + b"\0" * (width // 8)) * height
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 6))
        + chunk(b"IEND", b"")
    )


def png_bytes(size=(300, 200), colour=(250, 200, 20)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def png_data_uri() -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes((8, 8))).decode()


def endless_zeros(total: int = 200 * MB, chunk: int = 64 * 1024):
    """A 200 MB body produced lazily, so only what is actually sent is ever made."""

    def body():
        for _ in range(total // chunk):
            yield b"\0" * chunk

    return body


@dataclass(frozen=True)
class Row:
    url: str  # may use {port} (the allowed server) and {trap} (the trap server's port)
    code: str
    contacts_server: bool = False  # the allowed server is asked (then refuses what it answers)


# Each row: where, what should happen. Network rows resolve names through the fake DNS below.
FAKE_DNS = {
    "private.test": "10.0.0.5",
    "rebind.test": "127.0.0.1",
    "metadata.test": "169.254.169.254",
    "mixed.test": ["93.184.216.34", "192.168.1.20"],
}
ROWS = {
    "loopback-127.0.0.1": Row("http://127.0.0.1/admin", "forbidden_address"),
    "localhost": Row("http://localhost/", "forbidden_address"),
    "localhost-subdomain": Row("http://api.localhost/", "forbidden_address"),
    "private-10": Row("http://10.1.2.3/", "forbidden_address"),
    "private-172.16": Row("http://172.16.0.1/", "forbidden_address"),
    "private-192.168": Row("http://192.168.1.1/", "forbidden_address"),
    "metadata-169.254.169.254": Row("http://169.254.169.254/latest/meta-data/", "forbidden_address"),
    "metadata-ipv6": Row("http://[fd00:ec2::254]/latest/meta-data/", "forbidden_address"),
    "carrier-grade-nat": Row("http://100.64.0.1/", "forbidden_address"),
    "multicast": Row("http://224.0.0.1/", "forbidden_address"),
    "unspecified-0.0.0.0": Row("http://0.0.0.0/", "forbidden_address"),
    "ipv6-loopback": Row("http://[::1]/", "forbidden_address"),
    "ipv6-unspecified": Row("http://[::]/", "forbidden_address"),
    "ipv4-mapped-ipv6": Row("http://[::ffff:127.0.0.1]/", "forbidden_address"),
    "ipv4-mapped-ipv6-hex": Row("http://[::ffff:7f00:1]/", "forbidden_address"),
    "6to4-embedding-private": Row("http://[2002:c0a8:101::1]/", "forbidden_address"),
    "nat64-embedding-metadata": Row("http://[64:ff9b::a9fe:a9fe]/", "forbidden_address"),
    "ipv6-link-local-with-zone": Row("http://[fe80::1%25eth0]/", "forbidden_address"),
    "decimal-ipv4": Row("http://2130706433/", "forbidden_address"),
    "octal-ipv4": Row("http://0177.0.0.1/", "forbidden_address"),
    "hex-ipv4": Row("http://0x7f.0.0.1/", "forbidden_address"),
    "hex-ipv4-single-number": Row("http://0x7f000001/", "forbidden_address"),
    "short-ipv4": Row("http://127.1/", "forbidden_address"),
    "invalid-ipv4-number": Row("http://1.2.3.4.5/", "invalid_url"),
    "name-resolving-to-private": Row("http://private.test/cat.png", "forbidden_address"),
    "name-resolving-to-loopback": Row("https://rebind.test/cat.png", "forbidden_address"),
    "name-with-one-private-address": Row("http://mixed.test/cat.png", "forbidden_address"),
    "userinfo-trick": Row("http://images.example@127.0.0.1/", "ambiguous_url"),
    "loopback-on-an-unlisted-port": Row("http://127.0.0.1:{trap}/secret", "forbidden_port"),
    "public-name-on-another-port": Row("https://mixed.test:8443/", "forbidden_port"),
    "file-scheme": Row("file:///etc/passwd", "unsupported_url"),
    "gopher-scheme": Row("gopher://127.0.0.1:{trap}/_GET%20/secret", "unsupported_url"),
    "redirect-to-loopback": Row("http://127.0.0.1:{port}/to-loopback", "forbidden_address", True),
    "redirect-to-unlisted-port": Row("http://127.0.0.1:{port}/to-trap", "forbidden_port", True),
    "redirect-to-name-resolving-to-metadata": Row(
        "http://127.0.0.1:{port}/to-metadata", "forbidden_address", True
    ),
    "redirect-to-file": Row("http://127.0.0.1:{port}/to-file", "unsupported_url", True),
    "redirect-loop": Row("http://127.0.0.1:{port}/loop", "too_many_redirects", True),
    "200MB-body-streamed": Row("http://127.0.0.1:{port}/huge", "too_large", True),
    "200MB-body-declared": Row("http://127.0.0.1:{port}/huge-declared", "too_large", True),
    "png-bomb-20000x20000": Row("http://127.0.0.1:{port}/bomb.png", "too_many_pixels", True),
    "html-named-png": Row("http://127.0.0.1:{port}/cat.png", "not_an_image", True),
}


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return png_bomb()


@pytest.fixture
def network(http_server, start_http_server, fake_dns, bomb):
    """The allowed server with its routes, and the trap nobody may reach."""
    trap = start_http_server(allow=False)
    trap.route("/secret", Reply(200, b"secret"))
    for name, addresses in FAKE_DNS.items():
        fake_dns[name] = addresses
    redirect = lambda to: Reply(302, headers={"Location": to})  # noqa: E731
    http_server.route("/to-loopback", redirect("http://127.0.0.1/admin"))
    http_server.route("/to-trap", redirect(trap.url("/secret")))
    http_server.route("/to-metadata", redirect("http://metadata.test/latest/meta-data/"))
    http_server.route("/to-file", redirect("file:///etc/passwd"))
    http_server.route("/loop", redirect("/loop"))
    http_server.route("/huge", Reply(200, endless_zeros(), {"Content-Type": "image/png"}))
    http_server.route(
        "/huge-declared", Reply(200, endless_zeros(), {"Content-Type": "image/png"}, length=200 * MB)
    )
    http_server.route("/bomb.png", Reply(200, bomb, {"Content-Type": "image/png"}))
    http_server.route(
        "/cat.png", Reply(200, b"<!doctype html><title>Not found</title>", {"Content-Type": "text/html"})
    )
    return http_server, trap


@pytest.mark.parametrize("row", list(ROWS.values()), ids=list(ROWS))
def test_it_refuses_every_row_of_the_ssrf_table(network, outbound_connections, row):
    server, trap = network
    url = row.url.format(port=server.port, trap=trap.port)
    started = time.monotonic()

    with pytest.raises(FetchError) as caught:
        fetch_media(url, "image", max_pixels=MAX_PIXELS)

    assert caught.value.code == row.code, caught.value.message
    assert trap.requests == []
    assert all(connection == ("127.0.0.1", server.port) for connection in outbound_connections)
    if not row.contacts_server:
        assert outbound_connections == [], "a refused target must be refused before connecting"
    assert server.bytes_sent < 40 * MB, "a huge body must be cut off, not downloaded"
    assert time.monotonic() - started < 5


def test_a_redirect_is_followed_at_most_three_times(network):
    server, _ = network

    with pytest.raises(FetchError):
        fetch_media(server.url("/loop"), "image", max_pixels=MAX_PIXELS)

    assert len(server.requests_to("/loop")) == 4  # the request and three redirects


def test_a_name_is_resolved_once_per_request(http_server, fake_dns, settings):
    fake_dns["images.test"] = "127.0.0.1"
    http_server.route("/a.png", Reply(302, headers={"Location": "/b.png"}))
    http_server.route("/b.png", Reply(200, png_bytes(), {"Content-Type": "image/png"}))
    allowed = f"images.test:{http_server.port}"
    settings.PLAYGROUND_FETCH_ALLOWED_HOSTS = [*settings.PLAYGROUND_FETCH_ALLOWED_HOSTS, allowed]

    fetched, image = fetch_media(f"http://{allowed}/a.png", "image", max_pixels=MAX_PIXELS)

    assert image.size == (300, 200)
    assert fake_dns.lookups == ["images.test", "images.test"]  # once per request: a.png, b.png
    assert [r.headers["Host"] for r in http_server.requests] == [allowed, allowed]
    assert fetched.url == f"http://{allowed}/b.png"


# --- the same rules at submit time, through the API ------------------------------------------------

SUBMIT_ROWS = [
    "loopback-127.0.0.1",
    "localhost",
    "private-10",
    "private-172.16",
    "private-192.168",
    "metadata-169.254.169.254",
    "ipv6-loopback",
    "ipv4-mapped-ipv6",
    "unspecified-0.0.0.0",
    "decimal-ipv4",
    "octal-ipv4",
    "hex-ipv4",
    "name-resolving-to-private",
    "loopback-on-an-unlisted-port",
    "file-scheme",
    "gopher-scheme",
]


@pytest.mark.parametrize("name", SUBMIT_ROWS)
def test_the_api_refuses_a_refused_url_at_submit_naming_the_field(api, network, outbound_connections, name):
    server, trap = network
    url = ROWS[name].url.format(port=server.port, trap=trap.port)

    response = api.submit(image_urls=[png_data_uri(), url])

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "input.image_urls[1]"
    assert error["errors"][0]["code"] == ROWS[name].code
    assert not Task.objects.exists()
    assert outbound_connections == [] and trap.requests == []


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (SEED, seed_input(image_urls=[], mask_url="http://10.0.0.1/m.png"), "input.mask_url"),
        (
            "wan2-7-videoedit",
            {"prompt": "A fox", "video_urls": ["http://169.254.169.254/v.mp4"]},
            "input.video_urls[0]",
        ),
    ],
    ids=["mask_url", "video-upload-field"],
)
def test_the_api_refuses_a_private_url_in_any_media_field(api, model, data, field):
    if field == "input.mask_url":
        data["image_urls"] = [png_data_uri()]

    response = api.post("/api/v1/tasks", {"model": model, "input": data})

    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
    assert response.json()["error"]["errors"][0]["code"] == "forbidden_address"


def test_submit_checks_a_hosted_url_without_downloading_it(api, http_server, queue_only):
    url = http_server.route("/cat.png", Reply(200, png_bytes(), {"Content-Type": "image/png"}))

    response = api.submit(image_urls=[url])

    assert response.status_code == 201
    assert http_server.requests == []


def test_submit_accepts_a_name_that_does_not_resolve_yet(api, fake_dns, queue_only):
    response = api.submit(image_urls=["https://not-yet.test/cat.png"])

    assert response.status_code == 201
    assert fake_dns.lookups == ["not-yet.test"]


def test_a_name_server_that_does_not_answer_holds_a_submit_up_for_its_timeout_only(
    api, fake_dns, queue_only, settings, monkeypatch
):
    settings.PLAYGROUND_SUBMIT_DNS_TIMEOUT = 0.3
    answered = threading.Event()

    def stuck(host, port, **kwargs):
        answered.wait(10)  # a name server that never answers
        return fake_dns(host, port, **kwargs)

    monkeypatch.setattr(fetch, "system_resolver", stuck)
    started = time.monotonic()
    response = api.submit(image_urls=["https://slow-dns.test/cat.png"])
    answered.set()
    assert response.status_code == 201  # accepted; the worker checks the name again when it runs
    assert time.monotonic() - started < 2


# --- the positive case -------------------------------------------------------------------------------


def test_an_allowed_server_image_is_fetched_and_used_for_image_to_image(api, http_server):
    url = http_server.route("/cat.png", Reply(200, png_bytes((300, 200)), {"Content-Type": "image/png"}))

    created = api.submit(image_urls=[url], size="auto")

    body = api.get(f"/api/v1/tasks/{created.json()['task_id']}").json()
    assert body["status"] == "succeeded", body["error"]
    [image] = body["output"]["images"]
    assert (image["width"], image["height"]) == (1023, 682)  # the reference's 3:2, at 1K
    [request] = http_server.requests
    assert (request.method, request.path, request.headers["Host"]) == ("GET", "/cat.png", http_server.netloc)
