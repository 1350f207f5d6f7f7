"""URLs that parsers read differently are refused at submit with 422 naming the field, in the API
and the form (issue 13, item 6). The finding: `http://127.0.0.1\\@x/` passed our check as host `x`
(Python's urlsplit) but went upstream as written, where a browser-style parser reads 127.0.0.1."""

import pytest
from django.urls import reverse

from playground.engines.fetch import FetchError, check_url
from playground.generations.models import Task

from ..helpers import SEED, seed_input

AMBIGUOUS = {
    "backslash-before-at": "http://127.0.0.1\\@x.example/a.png",
    "backslash-as-slash": "https:\\\\x.example\\a.png",
    "user-and-password": "http://user:pw@x.example/a.png",
    "user-only": "http://x.example@127.0.0.1/a.png",
    "tab-inside": "http://x.exa\tmple/a.png",
    "newline-inside": "http://x.example/\na.png",
    "carriage-return-inside": "http://x.example/a\r.png",
    "percent-encoded-host": "http://%31%32%37.0.0.1/a.png",
    "percent-encoded-dot": "http://x%2eexample/a.png",
    "zero-width-space": "http://x.example\u200b/a.png",
    "leading-space": " http://x.example/a.png",
}


@pytest.fixture(autouse=True)
def public_name(fake_dns):
    fake_dns["x.example"] = "93.184.216.34"


@pytest.mark.parametrize("url", AMBIGUOUS.values(), ids=AMBIGUOUS.keys())
def test_the_api_refuses_an_ambiguous_url_with_422_naming_the_field(api, outbound_connections, url):
    response = api.submit(image_urls=[url])
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["field"] == "input.image_urls[0]"
    # A lone carriage return is no text at all: the one rule for text refuses it first.
    expected = "invalid_text" if "\r" in url else "ambiguous_url"
    assert error["errors"][0]["code"] == expected
    assert not Task.objects.exists()
    assert outbound_connections == []


def test_the_issues_url_is_refused_with_a_plain_reason(api):
    response = api.submit(image_urls=["http://127.0.0.1\\@x/"])
    assert response.status_code == 422
    assert response.json()["error"]["errors"][0]["message"] == (
        "The URL contains a backslash (\\): use forward slashes."
    )


def test_the_api_refuses_an_ambiguous_webhook_url(api):
    body = {"model": SEED, "input": seed_input(), "webhook_url": "http://user:pw@x.example/hook"}
    response = api.post("/api/v1/tasks", body)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "webhook_url"
    assert "user name or password" in response.json()["error"]["errors"][0]["message"]


@pytest.mark.parametrize(
    "url",
    [AMBIGUOUS["backslash-before-at"], AMBIGUOUS["user-and-password"], AMBIGUOUS["percent-encoded-host"]],
)
def test_the_form_refuses_an_ambiguous_url_beside_the_field(client, user, catalog, url):
    client.force_login(user)
    data = {"prompt": "a fox", "size": "1:1", "resolution": "1K", "n": "1", "image_urls": url}
    response = client.post(reverse("play", args=[SEED]), data)
    assert response.status_code == 422
    html = response.content.decode()
    assert "is not accepted" in html or "backslash" in html or "percent-encoded" in html
    assert not Task.objects.exists()


@pytest.mark.parametrize(
    "url", ["https://x.example/a.png?sig=a%20b", "https://x.example/path/a@2x.png", "http://[2001:db8::1]/a"]
)
def test_plain_urls_still_pass(url, fake_dns):
    try:
        check_url(url, unresolvable_ok=True)
    except FetchError as exc:
        assert exc.code != "ambiguous_url", exc.message
