from urllib.parse import urlsplit

import pytest

from playground.generations.outputs import file_token, token_is_valid


@pytest.fixture
def image_url(api):
    task_id = api.submit().json()["task_id"]
    return api.get(f"/api/v1/tasks/{task_id}").json()["output"]["images"][0]["url"]


def test_a_signed_url_works_without_credentials(client, image_url):
    response = client.get(image_url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_download_serves_the_file_as_an_attachment(client, image_url):
    shown, saved = client.get(image_url), client.get(f"{image_url}&download")
    assert shown["Content-Disposition"].startswith("inline; ")
    assert saved["Content-Disposition"].startswith("attachment; ")
    assert b"".join(saved.streaming_content) == b"".join(shown.streaming_content)


def test_without_a_token_only_the_owner_reads_the_file(client, image_url, key, other_api, user):
    bare = urlsplit(image_url).path
    assert client.get(bare).status_code == 404
    assert client.get(bare, headers={"Authorization": f"Bearer {other_api.key}"}).status_code == 404
    assert client.get(bare, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    client.force_login(user)
    assert client.get(bare).status_code == 200


def test_a_forged_or_expired_token_is_404(client, image_url, settings):
    bare = urlsplit(image_url).path
    assert client.get(bare + "?token=1.abc").status_code == 404
    task_id, name = bare.split("/")[2:4]
    old = file_token(task_id, name, now=1_000_000)
    assert not token_is_valid(task_id, name, old)
    assert client.get(f"{bare}?token={old}").status_code == 404


def test_a_token_stays_the_same_within_its_window_so_polls_see_one_url():
    assert file_token("task_a", "0.png", now=86400 * 10 + 5) == file_token(
        "task_a", "0.png", now=86400 * 10 + 80000
    )
    assert token_is_valid("task_a", "0.png", file_token("task_a", "0.png", now=86400 * 10), now=86400 * 16)
    assert not token_is_valid(
        "task_a", "0.png", file_token("task_a", "0.png", now=86400 * 10), now=86400 * 18
    )
    assert not token_is_valid("task_b", "0.png", file_token("task_a", "0.png"))


def test_public_url_setting_makes_urls_absolute_on_it(api, settings):
    settings.PLAYGROUND_PUBLIC_URL = "https://play.example.com"
    task_id = api.submit().json()["task_id"]
    url = api.get(f"/api/v1/tasks/{task_id}").json()["output"]["images"][0]["url"]
    assert url.startswith("https://play.example.com/files/")
