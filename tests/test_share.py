"""Public share pages of finished tasks: sharing and unsharing by the API and the task page, the
public page and its files for anyone without cookies, until the very moment of an unshare."""

import re
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from playground.access.callers import GUEST_SESSION_KEY
from playground.access.passes import create_pass, pass_token
from playground.generations.models import Share, Status, Task
from playground.generations.services import submit_task

from .helpers import DOCUMENT, SEED, data_uri, enter_demo, seed_input, solid_png

PROMPT = "a heron at dawn over the quiet marsh"


@pytest.fixture
def finished(api):
    response = api.submit(prompt=PROMPT)
    task = Task.objects.get(pk=response.json()["task_id"])
    assert task.status == Status.SUCCEEDED
    return task


def share(api, task, body=None):
    return api.post(reverse("api-task-share", args=[task.pk]), body)


def unshare(api, task):
    response = api.client.delete(reverse("api-task-share", args=[task.pk]), headers=api.headers({}))
    assert (
        str(response.status_code) in DOCUMENT["paths"]["/api/v1/tasks/{task_id}/share"]["delete"]["responses"]
    )
    return response


def path_of(url: str) -> str:
    return urlsplit(url).path


def image_urls(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', html)


# --- The API -------------------------------------------------------------------------------------------


def test_it_shares_a_succeeded_task_with_an_absolute_url(api, finished):
    response = share(api, finished)
    assert response.status_code == 201
    body = response.json()
    assert body["url"].startswith("http://testserver/s/")
    assert body["show_parameters"] is True
    token = body["url"].rsplit("/", 1)[-1]
    assert len(token) >= 32  # 192 random bits, URL-safe
    assert Share.objects.get(task=finished).token == token


def test_sharing_again_is_idempotent_with_the_same_url(api, finished):
    first = share(api, finished)
    again = share(api, finished)
    assert again.status_code == 200
    assert again.json()["url"] == first.json()["url"]
    assert again.json()["created"] == first.json()["created"]
    assert Share.objects.filter(task=finished).count() == 1


def test_unsharing_answers_204_and_a_new_share_is_a_new_url(api, finished):
    first = share(api, finished).json()["url"]
    assert unshare(api, finished).status_code == 204
    assert not Share.objects.filter(task=finished).exists()
    assert unshare(api, finished).status_code == 204  # unsharing twice is no error
    assert share(api, finished).json()["url"] != first  # the old link stays dead


def test_another_owners_task_is_404_like_a_missing_one(api, other_api, finished):
    for response in (
        share(other_api, finished),
        other_api.post(reverse("api-task-share", args=["task_doesnotexist"])),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "task_not_found"
    refused = other_api.client.delete(
        reverse("api-task-share", args=[finished.pk]), headers=other_api.headers({})
    )
    assert refused.status_code == 404
    assert not Share.objects.exists()


def test_a_task_that_has_not_succeeded_is_409(api, queue_only):
    task_id = api.submit().json()["task_id"]
    response = api.post(reverse("api-task-share", args=[task_id]))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "task_not_shareable"
    assert "queued" in response.json()["error"]["message"]
    assert not Share.objects.exists()


def test_show_parameters_must_be_a_boolean(api, finished):
    response = share(api, finished, {"show_parameters": "no"})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "show_parameters"


# --- The public page and its files ---------------------------------------------------------------------


def test_the_page_and_its_image_open_without_cookies_and_404_after_unshare(api, finished):
    url = share(api, finished).json()["url"]
    anyone = Client()
    page = anyone.get(path_of(url))
    assert page.status_code == 200
    html = page.content.decode()
    assert PROMPT in html
    [image] = image_urls(html)
    assert image.startswith("http://testserver/s/")
    assert "token=" not in image  # not the owner's signed URL, which would outlive the unshare
    served = anyone.get(path_of(image))
    assert served.status_code == 200
    assert b"".join(served.streaming_content).startswith(b"\x89PNG")
    assert not page.cookies and not served.cookies  # no session, no CSRF cookie
    assert "csrfmiddlewaretoken" not in html

    unshare(api, finished)
    assert anyone.get(path_of(url)).status_code == 404
    assert anyone.get(path_of(image)).status_code == 404


def test_the_page_carries_open_graph_tags_with_absolute_urls(api, finished):
    url = share(api, finished).json()["url"]
    html = Client().get(path_of(url)).content.decode()
    tags = dict(re.findall(r'<meta (?:property|name)="((?:og|twitter):[a-z:_]+)" content="([^"]*)"', html))
    assert tags["og:url"] == url
    assert tags["og:image"].startswith("http://testserver/s/") and tags["og:image"].endswith(".png")
    assert tags["twitter:card"] == "summary_large_image"
    assert tags["twitter:image"] == tags["og:image"]
    assert tags["og:title"] == finished.model.title
    assert PROMPT in tags["og:description"]
    assert Client().get(path_of(tags["og:image"])).status_code == 200


def test_the_page_honours_public_url(api, finished, settings):
    settings.PLAYGROUND_PUBLIC_URL = "https://play.example.com"
    url = share(api, finished).json()["url"]
    assert url.startswith("https://play.example.com/s/")
    html = Client().get(path_of(url)).content.decode()
    assert 'property="og:image" content="https://play.example.com/s/' in html


def test_show_parameters_off_hides_the_prompt_and_parameters(api, finished):
    url = share(api, finished, {"show_parameters": False}).json()["url"]
    html = Client().get(path_of(url)).content.decode()
    assert PROMPT not in html
    assert "data-prompt" not in html and "How it was made" not in html
    assert image_urls(html)
    # Ticked on again, the same page shows them.
    assert share(api, finished, {"show_parameters": True}).json()["url"] == url
    assert PROMPT in Client().get(path_of(url)).content.decode()


def test_the_page_shows_nothing_of_the_owner_cost_key_or_inputs(api, key, user, catalog):
    picture = data_uri(solid_png((10, 120, 40), (64, 64)))
    task_id = api.submit(prompt=PROMPT, image_urls=[picture]).json()["task_id"]
    task = Task.objects.get(pk=task_id)
    url = share(api, task).json()["url"]
    html = Client().get(path_of(url)).content.decode()
    assert PROMPT in html
    assert user.username not in html
    assert key not in html and key[:12] not in html
    assert "/inputs/" not in html and "token=" not in html and "data:image" not in html
    assert "0.12" not in html and "$" not in html  # no cost
    assert task.pk not in html and "/tasks/" not in html


def test_a_made_up_or_malformed_token_is_404(client, db):
    for token in ("x", "a" * 32, "a" * 200):
        assert client.get(f"/s/{token}").status_code == 404
        assert client.get(f"/s/{token}/files/0.png").status_code == 404


def test_a_file_not_of_the_shared_task_is_404(api, finished):
    url = share(api, finished).json()["url"]
    assert Client().get(path_of(url) + "/files/../../etc").status_code == 404
    assert Client().get(path_of(url) + "/files/9.png").status_code == 404


def test_the_page_is_kept_by_no_cache_and_listed_by_no_search_engine(api, finished):
    url = share(api, finished).json()["url"]
    page = Client().get(path_of(url))
    assert "no-cache" in page["Cache-Control"]
    assert "noindex" in page["X-Robots-Tag"]


# --- The task page's Share button and the history ------------------------------------------------------


def test_the_task_page_shares_and_unshares(client, user, finished):
    client.force_login(user)
    page = client.get(reverse("task", args=[finished.pk])).content.decode()
    assert "data-share" in page and reverse("task-share", args=[finished.pk]) in page
    shared = client.post(reverse("task-share", args=[finished.pk]), {"show_parameters": "on"})
    assert shared.status_code == 302
    share_row = Share.objects.get(task=finished)
    assert share_row.show_parameters
    page = client.get(reverse("task", args=[finished.pk])).content.decode()
    assert f"http://testserver/s/{share_row.token}" in page and "data-unshare" in page

    again = client.post(reverse("task-share", args=[finished.pk]), headers={"HX-Request": "true"})
    assert again.status_code == 200  # the Share box in place, with the same link
    assert f"/s/{share_row.token}" in again.content.decode() and "data-unshare" in again.content.decode()

    htmx = client.post(reverse("task-unshare", args=[finished.pk]), headers={"HX-Request": "true"})
    assert htmx.status_code == 200 and "data-share" in htmx.content.decode()
    assert not Share.objects.exists()
    assert Client().get(f"/s/{share_row.token}").status_code == 404


def test_unticking_show_parameters_on_the_task_page_hides_them(client, user, finished):
    client.force_login(user)
    client.post(reverse("task-share", args=[finished.pk]))  # the box unticked: not sent
    token = Share.objects.get(task=finished).token
    assert PROMPT not in Client().get(f"/s/{token}").content.decode()


def test_another_person_cannot_share_or_unshare_my_task(client, other_user, api, finished):
    share(api, finished)
    client.force_login(other_user)
    assert client.post(reverse("task-share", args=[finished.pk])).status_code == 404
    assert client.post(reverse("task-unshare", args=[finished.pk])).status_code == 404
    assert Share.objects.filter(task=finished).exists()


def test_history_marks_shared_tasks_and_filters_them(client, user, api, finished):
    other = Task.objects.get(pk=api.submit(prompt="an unshared owl").json()["task_id"])
    token = share(api, finished).json()["url"].rsplit("/", 1)[-1]
    client.force_login(user)
    everything = client.get(reverse("history")).content.decode()
    assert PROMPT in everything and "an unshared owl" in everything
    assert f'href="/s/{token}"' in everything
    only_shared = client.get(reverse("history"), {"shared": "1"}).content.decode()
    assert PROMPT in only_shared and "an unshared owl" not in only_shared
    assert 'name="shared" value="1" checked' in only_shared
    assert other.pk not in only_shared


# --- Guests on a demo pass -----------------------------------------------------------------------------


def guest_with_task(user, catalog, capture, *, allow_sharing):
    demo = create_pass(user, "Team demo", [SEED], spend_cap=5, hours=2, allow_sharing=allow_sharing)
    guest = Client()
    enter_demo(guest, reverse("demo", args=[pass_token(demo)]))
    data = seed_input(prompt=PROMPT)
    with capture(execute=True):
        task = submit_task(
            user,
            SEED,
            data,
            request_id="req_guest",
            source="demo",
            demo_pass=demo,
            guest=guest.session[GUEST_SESSION_KEY],
        ).task
    return guest, task


def test_a_guest_shares_their_result_when_the_pass_allows_it(
    user, catalog, django_capture_on_commit_callbacks
):
    guest, task = guest_with_task(user, catalog, django_capture_on_commit_callbacks, allow_sharing=True)
    page = guest.get(reverse("task", args=[task.pk])).content.decode()
    assert "data-share" in page
    assert guest.post(reverse("task-share", args=[task.pk]), {"show_parameters": "on"}).status_code == 302
    token = Share.objects.get(task=task).token
    assert PROMPT in Client().get(f"/s/{token}").content.decode()


def test_a_guest_is_refused_sharing_when_the_pass_does_not_allow_it(
    user, catalog, django_capture_on_commit_callbacks
):
    guest, task = guest_with_task(user, catalog, django_capture_on_commit_callbacks, allow_sharing=False)
    assert "data-share" not in guest.get(reverse("task", args=[task.pk])).content.decode()
    refused = guest.post(reverse("task-share", args=[task.pk]))
    assert refused.status_code == 403
    assert "does not allow sharing" in refused.content.decode()
    assert not Share.objects.exists()


def test_the_pass_form_sets_whether_guests_may_share(client, user, catalog):
    client.force_login(user)
    form = {"name": "Booth", "models": [SEED], "spend_cap": "5", "hours": "2"}
    client.post(reverse("pass-create"), form)
    client.post(reverse("pass-create"), {**form, "name": "Sharing booth", "allow_sharing": "on"})
    passes = dict(user.demo_passes.values_list("name", "allow_sharing"))
    assert passes == {"Booth": False, "Sharing booth": True}


def test_revoking_a_pass_ends_the_pages_its_guests_shared(
    client, user, catalog, django_capture_on_commit_callbacks
):
    guest, task = guest_with_task(user, catalog, django_capture_on_commit_callbacks, allow_sharing=True)
    guest.post(reverse("task-share", args=[task.pk]))
    token = Share.objects.get(task=task).token
    assert Client().get(f"/s/{token}").status_code == 200
    client.force_login(user)
    client.post(reverse("pass-revoke", args=[task.demo_pass_id]))
    assert Client().get(f"/s/{token}").status_code == 404
    assert not Share.objects.exists()
