"""The outside world for tests that fetch URLs or send webhooks: DNS and HTTP servers.

- `fake_dns` (autouse): no test ever sends a DNS query. Names resolve from a table the test can add
  to (`fake_dns["images.test"] = "127.0.0.1"`); `localhost` resolves as /etc/hosts has it; any other
  name does not exist. It replaces the fetcher's `system_resolver`, i.e. socket.getaddrinfo.
- `http_server`: a threaded HTTP server on 127.0.0.1, allow-listed in PLAYGROUND_FETCH_ALLOWED_HOSTS,
  answering from a route table and recording every request and every byte it sent.
- `start_http_server(allow=..., tls=...)`: more of them (not allow-listed, or serving HTTPS).
- `outbound_connections`: every TCP connection made in the test, refusing any but 127.0.0.1, so a
  test can prove nothing was fetched from a refused target.
- `fetch_media(url, kind, ...)`: `fetch_url`, then `media.check_media_content`, so a table can hold
  hostile bodies (a PNG bomb, an HTML page named .png) beside hostile addresses.
"""

import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from playground.engines import fetch
from playground.engines.fetch import Fetched, FetchError, fetch_url
from playground.engines.media import MediaError, check_media_content


class FakeResolver:
    """A stand-in for socket.getaddrinfo that answers from a table and counts lookups."""

    def __init__(self, table: dict[str, list[str]]):
        self.table = table
        self.lookups: list[str] = []

    def __setitem__(self, name: str, addresses: str | list[str]) -> None:
        self.table[name] = [addresses] if isinstance(addresses, str) else list(addresses)

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):
        self.lookups.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (address, port, 0, 0) if ":" in address else (address, port),
            )
            for address in self.table[host]
        ]


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch) -> FakeResolver:
    resolver = FakeResolver({"localhost": ["127.0.0.1", "::1"]})
    monkeypatch.setattr(fetch, "system_resolver", resolver)
    return resolver


def fetch_media(url: str, kind: str, *, max_pixels: int, **options) -> tuple[Fetched, Image.Image | None]:
    """`url` fetched under the SSRF rules (`options` as `fetch_url` takes them), then refused unless
    it is the `kind` of media claimed (`media.check_media_content`: an image decodes within the
    pixel cap and is returned). Refusals of either step are a FetchError with the step's code."""
    fetched = fetch_url(url, **options)
    try:
        image = check_media_content(kind, fetched.content, max_pixels)
    except MediaError as exc:
        raise FetchError(exc.code, exc.message) from exc
    return fetched, image


@dataclass
class Reply:
    """One answer: `body` is bytes (sent with a Content-Length unless `length` says otherwise) or a
    function returning chunks, streamed lazily without a length."""

    status: int = 200
    body: bytes | Callable[[], Iterable[bytes]] = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None  # a Content-Length to declare instead of the real one


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class LocalHttpServer:
    """A threaded HTTP/1.0 server on 127.0.0.1. `route(path, *replies)`: answers for a path, given
    in order to successive requests (the last one repeats); any other path is 404. A reply may be a
    function of the `Received` request returning the `Reply`."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.routes: dict[str, list[Reply | Callable[[Received], Reply]]] = {}
        self.requests: list[Received] = []
        self.bytes_sent = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.scheme = "https" if tls else "http"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def route(self, path: str, *replies: Reply | Callable[[Received], Reply]) -> str:
        self.routes[path] = list(replies)
        return self.url(path)

    def requests_to(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path.split("?")[0] == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _next_reply(self, path: str) -> Reply | Callable[[Received], Reply]:
        with self.lock:
            replies = self.routes.get(path.split("?")[0])
            if not replies:
                return Reply(404, b"not found")
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):
                pass

            def do_GET(self):
                self._answer()

            def do_POST(self):
                self._answer()

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                received = Received(self.command, self.path, dict(self.headers), body)
                with server.lock:
                    server.requests.append(received)
                reply = server._next_reply(self.path)
                if callable(reply):  # a receiver that decides from the request, e.g. by its signature
                    reply = reply(received)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if isinstance(reply.body, bytes):
                        self.send_header("Content-Length", str(reply.length or len(reply.body)))
                        self.end_headers()
                        self._send(reply.body)
                    else:
                        if reply.length is not None:
                            self.send_header("Content-Length", str(reply.length))
                        self.end_headers()
                        for chunk in reply.body():
                            self._send(chunk)
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                    pass  # the client hung up: what a fetcher refusing a body does

            def _send(self, chunk: bytes) -> None:
                self.wfile.write(chunk)
                with server.lock:
                    server.bytes_sent += len(chunk)

        return Handler


@pytest.fixture
def start_http_server(settings):
    servers = []

    def start(*, allow: bool = True, tls: ssl.SSLContext | None = None) -> LocalHttpServer:
        server = LocalHttpServer(tls)
        servers.append(server)
        if allow:
            settings.PLAYGROUND_FETCH_ALLOWED_HOSTS = [
                *settings.PLAYGROUND_FETCH_ALLOWED_HOSTS,
                server.netloc,
            ]
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def http_server(start_http_server) -> LocalHttpServer:
    """A 127.0.0.1 server the fetcher may use (its host:port is in PLAYGROUND_FETCH_ALLOWED_HOSTS)."""
    return start_http_server()


@pytest.fixture
def outbound_connections(monkeypatch) -> list[tuple[str, int]]:
    """Every TCP connection the test makes, as (address, port); any but 127.0.0.1 is refused
    before a packet is sent."""
    made: list[tuple[str, int]] = []
    real = socket.create_connection

    def create_connection(address, *args, **kwargs):
        made.append((address[0], address[1]))
        if address[0] != "127.0.0.1":
            raise ConnectionRefusedError(f"tests may only connect to 127.0.0.1, not {address[0]}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    return made
