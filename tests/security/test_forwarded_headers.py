"""`X-Forwarded-Proto` and `X-Forwarded-Host` count only from PLAYGROUND_TRUSTED_PROXIES (issue 13,
item 6). The finding: with no proxy in front, a client sending `X-Forwarded-Proto: https` got
https:// API output URLs and demo links. Its cause was gunicorn, which by default believes that
header from 127.0.0.1 before Django sees anything; so the proof runs the web server as `serve` runs
it."""

import os
import re
import socket
import subprocess
import time
from decimal import Decimal

import httpx
import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.urls import reverse

from playground.access.passes import create_pass, pass_token
from playground.keys.services import issue_key
from playground.web.management.commands.serve import web_command

from ..helpers import ROOT, SEED, database_url

FORGED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}


def free_port() -> int:
    for port in range(8700, 8800):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port in 8700-8799")


@pytest.fixture
def web_server(transactional_db, settings):
    """gunicorn started exactly as `serve` starts it, on this test's database; its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "PLAYGROUND_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "PLAYGROUND_PUBLIC_URL": "",
        "PLAYGROUND_TRUSTED_PROXIES": "",
        "SECRET_KEY": django_settings.SECRET_KEY,
    }
    process = subprocess.Popen(
        web_command("127.0.0.1", str(port), "1"),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "gunicorn did not start"
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "gunicorn did not answer within a minute"
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.django_db(transaction=True)
def test_a_client_without_a_trusted_proxy_cannot_make_output_urls_or_demo_links_https(
    web_server, user, catalog, make_task
):
    task = make_task(user, catalog)  # run here; the server only reads it
    secret = issue_key(user, name="probe").secret
    demo = create_pass(user, "Friday demo", [SEED], Decimal("5"), 24)
    browser = Client()
    browser.force_login(user)
    session = {
        django_settings.SESSION_COOKIE_NAME: browser.cookies[django_settings.SESSION_COOKIE_NAME].value
    }

    with httpx.Client(base_url=web_server, headers=FORGED) as probe:
        answer = probe.get(f"/api/v1/tasks/{task.pk}", headers={"Authorization": f"Bearer {secret}"})
        keys_page = probe.get("/keys", cookies=session)

    assert answer.status_code == 200, answer.text
    urls = [image["url"] for image in answer.json()["output"]["images"]]
    assert urls and all(url.startswith(f"{web_server}/files/") for url in urls), urls
    assert keys_page.status_code == 200
    links = re.findall(r"https?://[^\s\"<]+/demo/[^\s\"<]+", keys_page.text)
    assert links and set(links) == {f"{web_server}{reverse('demo', args=[pass_token(demo)])}"}, links


def test_a_trusted_proxys_forwarded_proto_and_host_are_believed(client, user, catalog, settings):
    settings.PLAYGROUND_TRUSTED_PROXIES = ["127.0.0.1"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.USE_X_FORWARDED_HOST = True
    settings.ALLOWED_HOSTS = ["testserver", "play.example"]
    create_pass(user, "Friday demo", [SEED], Decimal("5"), 24)
    client.force_login(user)
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "play.example"}
    html = client.get(reverse("keys"), headers=proxied, secure=False).content.decode()
    assert "https://play.example/demo/" in html

    settings.PLAYGROUND_TRUSTED_PROXIES = ["10.0.0.5"]  # the same headers from anyone else
    html = client.get(reverse("keys"), headers=proxied).content.decode()
    assert "http://testserver/demo/" in html and "play.example" not in html
