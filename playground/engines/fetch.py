"""Fetching hosted inputs, and posting webhooks, without being turned against our own network.

A URL a user hands us is only ever contacted when:

- it is spelled one way only: no user name or password (`user@host`), no backslash, no space, tab,
  line break or other control character, no percent-encoded host. Parsers disagree on those, and
  the URL we check must be the URL the platform reads (`refuse_ambiguous`);
- its scheme is http or https and its port the scheme's default (80 or 443);
- its host is not `localhost` and every address it resolves to is public: loopback, private,
  link-local, multicast, reserved, unspecified, carrier-grade NAT and cloud-metadata addresses are
  refused in every spelling (IPv4-mapped, 6to4 and NAT64 IPv6; decimal, octal and hex IPv4);
- the connection goes to exactly the address that was checked. The name is resolved once; the Host
  header, TLS SNI and the certificate check still use the name. So DNS cannot answer one address
  to the check and another to the connection (DNS rebinding);
- every redirect passes the same checks (at most `MAX_REDIRECTS`);
- the whole exchange fits in PLAYGROUND_FETCH_TIMEOUT seconds and PLAYGROUND_FETCH_MAX_BYTES bytes,
  counted while streaming, so a huge body is cut off rather than downloaded.

PLAYGROUND_FETCH_ALLOWED_HOSTS (`host` = any port of that host, `host:port` = that port only) lifts
the address and port rules for exactly those hosts: an internal image store, or 127.0.0.1 in tests.

Names are resolved by a resolver with `socket.getaddrinfo`'s signature. Every function takes one;
without it they use `system_resolver` (socket.getaddrinfo), which the test suite replaces so that no
test ever sends a DNS query.

This module knows URLs, addresses and HTTP, not media: what a body holds is for the caller to check
with `media`'s checks, and `media` uses `check_url` for hosted inputs at submit.
"""

import functools
import ipaddress
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import Any
from urllib.parse import urlsplit

import httpx
import idna
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

Resolver = Callable[..., list[tuple[Any, ...]]]
IPAddress = IPv4Address | IPv6Address

system_resolver: Resolver = socket.getaddrinfo

MAX_REDIRECTS = 3
DEFAULT_PORTS = {"http": 80, "https": 443}
USER_AGENT = "playground-fetch/1"
# Cloud metadata services: link-local or unique-local already, named so the refusal says why.
METADATA_ADDRESSES = frozenset({IPv4Address("169.254.169.254"), IPv6Address("fd00:ec2::254")})
CARRIER_GRADE_NAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
HOST_NAME = re.compile(r"^[a-z0-9_.:%-]+$")  # names, and IPv6 literals as urlsplit leaves them
NUMERIC_LABEL = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class FetchError(Exception):
    """A URL refused or a fetch that failed: `code` for programs, `message` in plain words."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Destination:
    """A checked URL: where to connect (`addresses`, all checked) and what to ask for there."""

    scheme: str
    host: str  # the name (or canonical address) sent as Host and used for TLS
    port: int
    target: str  # path and query, as given
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host_header}{self.target}"

    def url_for(self, address: str) -> httpx.URL:
        return httpx.URL(scheme=self.scheme, host=address, port=self.port, raw_path=self.target.encode())


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    content: bytes
    content_type: str


# --- Addresses ------------------------------------------------------------------------------------


def refusal_reason(address: IPAddress) -> str | None:
    """Why `address` must not be contacted, in words, or None for a public address."""
    if isinstance(address, IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None and (reason := refusal_reason(embedded)):
            return reason
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, IPv4Address) and address in CARRIER_GRADE_NAT:
        return "a carrier-grade NAT address"
    if address.is_private or (isinstance(address, IPv6Address) and address.is_site_local):
        # fec0::/10, site-local: deprecated, but routed inside some networks like a private range
        return "a private network address"
    if address.is_reserved or not address.is_global:
        return "a reserved, non-public address"
    return None


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address `host` spells, if it is one: IPv6, dotted IPv4, or the decimal, octal and hex
    IPv4 forms browsers and C libraries accept (`2130706433`, `0177.0.0.1`, `0x7f.1`)."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # an IPv6 zone does not change the address
    except ValueError:
        pass
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()
    if not NUMERIC_LABEL.match(labels[-1]):
        return None  # a name, such as example.com (a numeric last label would make it an address)
    try:
        if len(labels) > 4 or not all(NUMERIC_LABEL.match(label) for label in labels):
            raise ValueError
        numbers = [_ipv4_number(label) for label in labels]
        *leading, last = numbers
        if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
            raise ValueError
    except ValueError:
        raise FetchError("invalid_url", f"{host} is neither a valid host name nor an address.") from None
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return IPv4Address(value)


def _ipv4_number(label: str) -> int:
    if label[:2].lower() == "0x":
        return int(label[2:] or "0", 16)
    if len(label) > 1 and label[0] == "0":
        return int(label, 8)
    return int(label)


def allowed_hosts() -> set[tuple[str, int | None]]:
    """PLAYGROUND_FETCH_ALLOWED_HOSTS as (host, port or None for any port)."""
    allowed = set()
    for entry in settings.PLAYGROUND_FETCH_ALLOWED_HOSTS:
        entry = entry.strip().lower()
        host, port_text = entry, ""
        if entry.startswith("["):  # [::1] or [::1]:8080
            host, _, rest = entry[1:].partition("]")
            port_text = rest.removeprefix(":")
        elif entry.count(":") == 1:  # host:port (more colons: a bare IPv6 address)
            host, port_text = entry.split(":")
        if not host or (port_text and not port_text.isdigit()):
            raise ImproperlyConfigured(
                f"PLAYGROUND_FETCH_ALLOWED_HOSTS: {entry!r} is not `host` or `host:port`."
            )
        allowed.add((host.rstrip("."), int(port_text) if port_text else None))
    return allowed


def _is_allowed(names: set[str], port: int) -> bool:
    allowed = allowed_hosts()
    return any((name, None) in allowed or (name, port) in allowed for name in names)


# Submit-time lookups run here, so a slow name server costs a request at most its timeout and a
# handful of slow names cannot hold more than these threads (getaddrinfo itself cannot be timed out).
_lookups = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dns")
# The moment the submit-time lookups of one request give up together (`submit_lookups`).
_lookup_deadline: ContextVar[float | None] = ContextVar("lookup_deadline", default=None)


@contextmanager
def submit_lookups() -> Iterator[None]:
    """One PLAYGROUND_SUBMIT_DNS_TIMEOUT for all the submit-time lookups inside (a request may name
    many hosts): once it has passed, the names not resolved yet pass unresolved, to be checked
    again when the task runs."""
    token = _lookup_deadline.set(time.monotonic() + settings.PLAYGROUND_SUBMIT_DNS_TIMEOUT)
    try:
        yield
    finally:
        _lookup_deadline.reset(token)


def _resolve(
    host: str, port: int, resolver: Resolver | None, timeout: float | None = None
) -> list[IPAddress]:
    resolve = resolver or system_resolver
    try:
        if timeout is None:
            infos = resolve(host, port, type=socket.SOCK_STREAM)
        else:
            if (deadline := _lookup_deadline.get()) is not None:
                timeout = min(timeout, max(deadline - time.monotonic(), 0.0))
            infos = _lookups.submit(resolve, host, port, type=socket.SOCK_STREAM).result(timeout=timeout)
    except FutureTimeout as exc:
        raise FetchError("unresolvable_host", f"The host name {host} did not resolve in time.") from exc
    except (OSError, UnicodeError) as exc:
        raise FetchError("unresolvable_host", f"The host name {host} could not be resolved.") from exc
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise FetchError("unresolvable_host", f"The host name {host} could not be resolved.")
    return addresses


def refuse_ambiguous(url: str) -> None:
    """Refuse the spellings that parsers read differently. Python's urlsplit drops tabs and line
    breaks and keeps a backslash as part of the host or path, where a browser-style (WHATWG)
    parser, like the platform's, reads `\\` as `/`: `http://127.0.0.1\\@x/` is host `x` to one and
    127.0.0.1 to the other. So the URL we check is exactly the URL we fetch and send upstream."""
    if "\\" in url:
        raise FetchError("ambiguous_url", "The URL contains a backslash (\\): use forward slashes.")
    if any(char == " " or not char.isprintable() for char in url):
        raise FetchError(
            "ambiguous_url",
            "The URL contains a space, tab, line break or other control character: encode spaces as %20.",
        )


def check_url(url: str, *, resolver: Resolver | None = None, unresolvable_ok: bool = False) -> Destination:
    """Check `url` against the rules above, resolving its host once, and say where to connect.

    With `unresolvable_ok` (at submit time) a name that does not resolve, or not within
    PLAYGROUND_SUBMIT_DNS_TIMEOUT seconds, passes with no addresses: it may resolve by the time the
    task runs, and is checked again then.
    """
    refuse_ambiguous(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError("invalid_url", "The URL is not valid.") from exc
    if "@" in parts.netloc:
        raise FetchError(
            "ambiguous_url", "A URL with a user name or password (user@host) is not accepted: remove it."
        )
    if "%" in parts.netloc and not parts.netloc.startswith("["):
        raise FetchError(
            "ambiguous_url", "The URL's host is percent-encoded (%…): write the host name plainly."
        )
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise FetchError("unsupported_url", "Only http and https URLs can be fetched.")
    name = (parts.hostname or "").rstrip(".")
    if not name:
        raise FetchError("invalid_url", "The URL has no host.")
    if not name.isascii():
        # As browsers and the platform read it (UTS 46, non-transitional: `faß` is `xn--fa-hia`),
        # not Python's IDNA 2003 codec, which would check another domain (`fass`).
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError:
            name = ""
    if not HOST_NAME.match(name):
        raise FetchError("invalid_url", "The URL's host is not a valid host name.")
    port = port or DEFAULT_PORTS[scheme]
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    literal = parse_ip_literal(name)
    host = str(literal) if literal is not None else name
    allowed = _is_allowed({host, name}, port)
    if not allowed and port != DEFAULT_PORTS[scheme]:
        raise FetchError(
            "forbidden_port", f"Only the standard port ({DEFAULT_PORTS[scheme]} for {scheme}) can be used."
        )
    if not allowed and (name == "localhost" or name.endswith(".localhost")):
        raise FetchError("forbidden_address", f"{name} is this machine; it is not fetched from.")
    if literal is not None:
        addresses = [literal]
    else:
        try:
            timeout = settings.PLAYGROUND_SUBMIT_DNS_TIMEOUT if unresolvable_ok else None
            addresses = _resolve(name, port, resolver, timeout)
        except FetchError:
            if unresolvable_ok:
                return Destination(scheme, host, port, target, ())
            raise
    if not allowed:
        for address in addresses:
            if reason := refusal_reason(address):
                if literal is None:
                    where = f"{name} resolves to {address},"
                else:
                    where = f"{address} is" if name == host else f"{name} ({address}) is"
                raise FetchError("forbidden_address", f"{where} {reason}; it is not fetched from.")
    return Destination(scheme, host, port, target, tuple(str(a) for a in addresses))


# --- Talking to a checked destination -------------------------------------------------------------


@functools.cache
def trusted_roots() -> ssl.SSLContext:
    """httpx's default certificate check, built once: loading the CA bundle costs ~50 ms a time."""
    return httpx.create_ssl_context()


def _remaining(deadline: float, timeout: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError("fetch_timeout", f"The server did not answer within {timeout:g} s.")
    return left


@contextmanager
def _exchange(
    destination: Destination,
    method: str,
    *,
    deadline: float,
    timeout: float,
    verify: ssl.SSLContext | bool,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> Iterator[httpx.Response]:
    """One request to one of the destination's checked addresses (tried in order), streamed.

    A new client per exchange: a pooled connection must never be reused for another host name, as
    it was verified for the first one only. `trust_env=False`: no proxy may take the request
    elsewhere.
    """
    last_error: Exception | None = None
    for address in destination.addresses:
        request_headers = {"Host": destination.host_header, "User-Agent": USER_AGENT, **(headers or {})}
        extensions = {}
        if destination.scheme == "https" and parse_ip_literal(destination.host) is None:
            extensions["sni_hostname"] = destination.host  # SNI and certificate check use the name
        tls = trusted_roots() if verify is True else verify
        with httpx.Client(trust_env=False, verify=tls, follow_redirects=False) as client:
            request = client.build_request(
                method,
                destination.url_for(address),
                headers=request_headers,
                content=content,
                timeout=httpx.Timeout(_remaining(deadline, timeout)),
                extensions=extensions,
            )
            try:
                response = client.send(request, stream=True)
            except httpx.ConnectError as exc:
                if problem := _certificate_problem(exc):
                    raise FetchError(
                        "fetch_failed", f"The certificate of {destination.host} is not valid: {problem}."
                    ) from exc
                last_error = exc
                continue
            except httpx.TimeoutException as exc:
                raise FetchError("fetch_timeout", f"The server did not answer within {timeout:g} s.") from exc
            except httpx.HTTPError as exc:
                logger.info("request to %s failed: %r", destination.host, exc)
                raise FetchError("fetch_failed", f"The request to {destination.host} failed.") from exc
            try:
                yield response
            finally:
                response.close()
            return
    logger.info("could not connect to %s: %r", destination.host, last_error)
    raise FetchError("fetch_failed", f"Could not connect to {destination.host}.")


def _certificate_problem(error: BaseException | None) -> str | None:
    """The certificate check's complaint behind a connection error, if that was the cause."""
    while error is not None:
        if isinstance(error, ssl.SSLCertVerificationError):
            return error.verify_message or "it could not be verified"
        error = error.__cause__ or error.__context__
    return None


def _read_capped(response: httpx.Response, *, max_bytes: int, deadline: float, timeout: float) -> bytes:
    """The body, refused as soon as it is known to exceed `max_bytes` or to take too long."""
    too_large = FetchError("too_large", f"The file is larger than {max_bytes / (1024 * 1024):g} MB.")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    chunks, size = [], 0
    try:
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise too_large
            _remaining(deadline, timeout)
            chunks.append(chunk)
    except httpx.TimeoutException as exc:
        raise FetchError("fetch_timeout", f"The download took longer than {timeout:g} s.") from exc
    except httpx.HTTPError as exc:
        logger.info("download interrupted: %r", exc)
        raise FetchError("fetch_failed", "The download broke off before the end.") from exc
    return b"".join(chunks)


def fetch_url(
    url: str,
    *,
    resolver: Resolver | None = None,
    max_bytes: int | None = None,
    timeout: float | None = None,
    verify: ssl.SSLContext | bool = True,
) -> Fetched:
    """GET `url` under the rules above, following up to `MAX_REDIRECTS` checked redirects."""
    max_bytes = max_bytes if max_bytes is not None else settings.PLAYGROUND_FETCH_MAX_BYTES
    timeout = timeout if timeout is not None else settings.PLAYGROUND_FETCH_TIMEOUT
    deadline = time.monotonic() + timeout
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        destination = check_url(current, resolver=resolver)
        with _exchange(destination, "GET", deadline=deadline, timeout=timeout, verify=verify) as response:
            if response.status_code in REDIRECT_STATUSES:
                location = response.headers.get("Location")
                if not location:
                    raise FetchError("fetch_failed", "The server redirected without saying where to.")
                current = str(httpx.URL(destination.url).join(location))
                continue
            if not response.is_success:
                phrase = f" {response.reason_phrase}" if response.reason_phrase else ""
                raise FetchError("http_error", f"The server answered {response.status_code}{phrase}.")
            content = _read_capped(response, max_bytes=max_bytes, deadline=deadline, timeout=timeout)
            content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            return Fetched(destination.url, content, content_type)
    raise FetchError("too_many_redirects", f"The URL redirected more than {MAX_REDIRECTS} times.")


def post_json(
    url: str,
    body: bytes,
    *,
    headers: dict[str, str] | None = None,
    resolver: Resolver | None = None,
    timeout: float | None = None,
    verify: ssl.SSLContext | bool = True,
) -> int:
    """POST a JSON `body` to `url` under the same address rules; returns the status code.

    Redirects are not followed (a webhook receiver answers where it was asked); at most 64 KB of
    the answer is read, as only its status matters.
    """
    timeout = timeout if timeout is not None else settings.PLAYGROUND_FETCH_TIMEOUT
    deadline = time.monotonic() + timeout
    destination = check_url(url, resolver=resolver)
    request_headers = {"Content-Type": "application/json", **(headers or {})}
    with _exchange(
        destination,
        "POST",
        deadline=deadline,
        timeout=timeout,
        verify=verify,
        headers=request_headers,
        content=body,
    ) as response:
        try:
            _read_capped(response, max_bytes=64 * 1024, deadline=deadline, timeout=timeout)
        except FetchError as exc:
            if exc.code != "too_large":
                raise
        return response.status_code
