"""The fetcher beyond the SSRF table (tests/test_fetch_ssrf.py): how it connects, its failures in
plain words, the allow-list, HTTPS checked against the host name, and video/audio content checks.

DNS is the fake resolver and every server is a local 127.0.0.1 one (tests/fixtures_http.py).
"""

import datetime
import gzip
import io
import socket
import ssl
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.core.exceptions import ImproperlyConfigured
from PIL import Image

from playground.engines.fetch import FetchError, check_url, fetch_url

from .fixtures_http import Reply, fetch_media

MAX_PIXELS = 50_000_000
WEBM = bytes.fromhex("1a45dfa3") + b"\x9f\x42\x86\x81\x01" + b"\0" * 32
MP4 = b"\0\0\0\x20ftypisom" + b"\0" * 32
MP3 = b"ID3\x04\0\0\0\0\0\0" + b"\0" * 32
WAV = b"RIFF\x24\0\0\0WAVEfmt " + b"\0" * 32
HTML = b"<!doctype html><html><body>Sign in</body></html>"


def png_bytes(size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "teal").save(buffer, "PNG")
    return buffer.getvalue()


def allow(settings, *entries: str) -> None:
    settings.PLAYGROUND_FETCH_ALLOWED_HOSTS = [*settings.PLAYGROUND_FETCH_ALLOWED_HOSTS, *entries]


# --- what it fetches -------------------------------------------------------------------------------


def test_it_fetches_an_image_from_an_allowed_server(http_server):
    url = http_server.route("/a.png", Reply(200, png_bytes(), {"Content-Type": "image/png; charset=x"}))

    fetched, image = fetch_media(url, "image", max_pixels=MAX_PIXELS)

    assert image.size == (40, 30)
    assert fetched.content_type == "image/png"
    assert fetched.url == url
    [request] = http_server.requests
    assert request.headers["Host"] == http_server.netloc
    assert request.headers["User-Agent"].startswith("playground-fetch/")


def test_it_follows_a_relative_redirect_on_an_allowed_server(http_server):
    http_server.route("/old.png", Reply(301, headers={"Location": "/new.png?v=2"}))
    http_server.route("/new.png", Reply(200, png_bytes()))

    fetched = fetch_url(http_server.url("/old.png"))

    assert fetched.url == http_server.url("/new.png?v=2")
    assert [r.path for r in http_server.requests] == ["/old.png", "/new.png?v=2"]


@pytest.mark.parametrize(
    ("kind", "content"),
    [("video", WEBM), ("video", MP4), ("audio", MP3), ("audio", WAV), ("audio", WEBM)],
    ids=["webm", "mp4", "mp3", "wav", "webm-audio"],
)
def test_it_accepts_video_and_audio_by_their_container_signature(http_server, kind, content):
    url = http_server.route("/media", Reply(200, content))

    fetched, image = fetch_media(url, kind, max_pixels=MAX_PIXELS)

    assert fetched.content == content
    assert image is None


@pytest.mark.parametrize(
    ("kind", "content", "code"),
    [("video", HTML, "not_video"), ("video", MP3, "not_video"), ("audio", b"hello", "not_audio")],
    ids=["html-as-video", "mp3-as-video", "text-as-audio"],
)
def test_it_refuses_what_is_not_the_media_claimed(http_server, kind, content, code):
    url = http_server.route("/media", Reply(200, content, {"Content-Type": f"{kind}/mp4"}))

    with pytest.raises(FetchError) as caught:
        fetch_media(url, kind, max_pixels=MAX_PIXELS)

    assert caught.value.code == code
    assert caught.value.message.startswith(f"The file is not a {kind} file")


def test_it_counts_decompressed_bytes_so_a_gzip_bomb_is_cut_off(http_server, settings):
    settings.PLAYGROUND_FETCH_MAX_BYTES = 1024 * 1024
    bomb = gzip.compress(b"\0" * (16 * 1024 * 1024), 9)  # 16 MB in ~16 KB
    url = http_server.route("/a.png", Reply(200, bomb, {"Content-Encoding": "gzip"}))

    with pytest.raises(FetchError) as caught:
        fetch_url(url)

    assert caught.value.code == "too_large"
    assert caught.value.message == "The file is larger than 1 MB."


# --- failures, in plain words ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "code", "message"),
    [
        (Reply(404, b"nope"), "http_error", "The server answered 404 Not Found."),
        (Reply(503, b"busy"), "http_error", "The server answered 503 Service Unavailable."),
        (Reply(302), "fetch_failed", "The server redirected without saying where to."),
    ],
    ids=["404", "503", "redirect-without-location"],
)
def test_it_reports_an_unusable_answer(http_server, reply, code, message):
    url = http_server.route("/a.png", reply)

    with pytest.raises(FetchError) as caught:
        fetch_url(url)

    assert (caught.value.code, caught.value.message) == (code, message)


def test_it_gives_up_on_a_server_slower_than_the_timeout(http_server, settings):
    settings.PLAYGROUND_FETCH_TIMEOUT = 0.5

    def drip():
        for _ in range(20):
            yield b"\0" * 10
            time.sleep(0.1)

    url = http_server.route("/slow.png", Reply(200, drip))
    started = time.monotonic()

    with pytest.raises(FetchError) as caught:
        fetch_url(url)

    assert caught.value.code == "fetch_timeout"
    assert time.monotonic() - started < 1.5  # the whole download, not each read, is bounded


def test_it_reports_a_name_that_does_not_resolve():
    with pytest.raises(FetchError) as caught:
        fetch_url("https://nowhere.test/a.png")

    assert (caught.value.code, caught.value.message) == (
        "unresolvable_host",
        "The host name nowhere.test could not be resolved.",
    )


def test_it_reports_a_server_that_refuses_the_connection(settings):
    with socket.socket() as placeholder:  # a port nothing listens on
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    allow(settings, f"127.0.0.1:{port}")

    with pytest.raises(FetchError) as caught:
        fetch_url(f"http://127.0.0.1:{port}/a.png")

    assert caught.value.code == "fetch_failed"
    assert caught.value.message.startswith("Could not connect to 127.0.0.1")


def test_it_ignores_proxy_settings_from_the_environment(http_server, start_http_server, monkeypatch):
    proxy = start_http_server(allow=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    monkeypatch.setenv("ALL_PROXY", proxy.url())
    url = http_server.route("/a.png", Reply(200, png_bytes()))

    fetch_url(url)

    assert proxy.requests == []
    assert len(http_server.requests) == 1


# --- the allow-list and address checks without a connection ----------------------------------------


def test_an_allowed_host_without_a_port_allows_any_port(settings, fake_dns):
    fake_dns["store.internal"] = "10.20.0.5"
    allow(settings, "store.internal")

    destination = check_url("http://store.internal:9000/a.png?sig=1")

    assert destination.addresses == ("10.20.0.5",)
    assert destination.host_header == "store.internal:9000"
    assert destination.target == "/a.png?sig=1"


def test_an_allowed_host_with_a_port_allows_only_that_port(settings):
    allow(settings, "[::1]:8080", "127.0.0.1:9000")

    assert check_url("http://[::1]:8080/").addresses == ("::1",)
    with pytest.raises(FetchError) as caught:
        check_url("http://[::1]:8081/")
    assert caught.value.code == "forbidden_port"
    with pytest.raises(FetchError) as caught:
        check_url("http://127.0.0.1/")
    assert caught.value.code == "forbidden_address"


@pytest.mark.parametrize("entry", ["images.test:http", ":8080", "[::1]:x"])
def test_a_malformed_allow_list_entry_stops_with_a_clear_message(settings, entry):
    allow(settings, entry)

    with pytest.raises(ImproperlyConfigured) as caught:
        check_url("https://images.example/a.png")

    assert "PLAYGROUND_FETCH_ALLOWED_HOSTS" in str(caught.value)


def test_a_public_address_passes_and_is_where_the_connection_goes(fake_dns):
    fake_dns["images.example"] = ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]

    destination = check_url("https://images.example/a.png")

    assert destination.addresses == ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
    assert str(destination.url_for("93.184.216.34")) == "https://93.184.216.34/a.png"
    assert destination.host_header == "images.example"
    assert check_url("http://134744072/").addresses == ("8.8.8.8",)  # decimal spelling, public


@pytest.mark.parametrize(
    ("url", "code"),
    [("http:///a.png", "invalid_url"), ("http://a b/", "ambiguous_url"), ("http://x:99999/", "invalid_url")],
    ids=["no-host", "space-in-host", "port-out-of-range"],
)
def test_it_refuses_a_malformed_url(url, code):
    with pytest.raises(FetchError) as caught:
        check_url(url)

    assert caught.value.code == code


# --- HTTPS: connect to the checked address, verify the certificate against the name -----------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    """A throwaway CA and a certificate for images.test signed by it (PEM paths)."""
    folder = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.UTC)

    def build(subject, issuer, key, signer, *, ca, names=()):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=not ca,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=ca,
                    crl_sign=ca,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        )
        if not ca:
            builder = (
                builder.add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
                )
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            )
        return builder.sign(signer, hashes.SHA256())

    def name(text):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = build(name("playground test CA"), name("playground test CA"), ca_key, ca_key, ca=True)
    leaf = build(
        name("images.test"), name("playground test CA"), leaf_key, ca_key, ca=False, names=["images.test"]
    )
    paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


@pytest.fixture
def https_server(certificates, start_http_server, fake_dns, settings):
    """An HTTPS server on 127.0.0.1 presenting the images.test certificate; it records the SNI
    names it is asked for. images.test and other.test both resolve to it and are allow-listed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificates["cert"], certificates["key"])
    server_names = []
    context.sni_callback = lambda sock, server_name, ctx: server_names.append(server_name)
    server = start_http_server(allow=False, tls=context)
    server.server_names = server_names
    for host in ("images.test", "other.test"):
        fake_dns[host] = "127.0.0.1"
        allow(settings, f"{host}:{server.port}")
    server.route("/a.png", Reply(200, png_bytes()))
    return server


@pytest.fixture
def trust_test_ca(certificates) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificates["ca"]))


def test_https_sends_the_name_as_sni_and_host_while_connecting_to_the_checked_address(
    https_server, trust_test_ca, outbound_connections
):
    url = https_server.url("/a.png", host="images.test")

    _, image = fetch_media(url, "image", max_pixels=MAX_PIXELS, verify=trust_test_ca)

    assert image.size == (40, 30)
    assert outbound_connections == [("127.0.0.1", https_server.port)]
    assert https_server.server_names == ["images.test"]
    assert https_server.requests[0].headers["Host"] == f"images.test:{https_server.port}"


def test_https_refuses_a_certificate_for_another_name_at_the_same_address(https_server, trust_test_ca):
    with pytest.raises(FetchError) as caught:
        fetch_url(https_server.url("/a.png", host="other.test"), verify=trust_test_ca)

    assert caught.value.code == "fetch_failed"
    assert caught.value.message.startswith("The certificate of other.test is not valid: Hostname mismatch")
    assert https_server.requests == []


def test_https_refuses_a_certificate_from_an_unknown_authority(https_server):
    with pytest.raises(FetchError) as caught:
        fetch_url(https_server.url("/a.png", host="images.test"))  # the system's roots only

    assert caught.value.code == "fetch_failed"
    assert caught.value.message.startswith("The certificate of images.test is not valid: ")
    assert https_server.requests == []
