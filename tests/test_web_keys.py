"""The issued-keys dashboard: create (secret shown once), list, disable / enable / delete."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from playground.keys.models import ApiKey
from playground.keys.services import issue_key

from .helpers import Api

SECRET = re.compile(r"pg_live_[0-9A-Za-z]{38}")


@pytest.fixture
def signed_in(client, user, catalog):
    client.force_login(user)
    return client


def create(client, **fields):
    data = {"name": "nightly", "expires_on": "", "budget": "", **fields}
    return client.post(reverse("key-create"), data, headers={"HX-Request": "true"})


def test_a_new_key_is_shown_once_then_only_its_prefix(signed_in, user):
    response = create(signed_in)
    html = response.content.decode()
    secrets = SECRET.findall(html)
    assert len(secrets) == 1
    assert "shown only this once" in html
    assert "no-store" in response["Cache-Control"]
    key = ApiKey.objects.get(user=user)
    assert key.name == "nightly" and secrets[0].startswith(key.prefix)
    page = signed_in.get(reverse("keys")).content.decode()
    assert secrets[0] not in page and f"{key.prefix}…" in page


def test_expiry_and_budget_are_recorded_and_a_past_expiry_refused(signed_in, user):
    create(signed_in, expires_on="2099-01-01", budget="2.5")
    key = ApiKey.objects.get(user=user)
    assert key.budget == Decimal("2.5") and key.expires_at.year == 2099
    refused = create(signed_in, name="late", expires_on=timezone.localdate().isoformat()).content.decode()
    assert "Pick a day after today." in refused
    assert ApiKey.objects.filter(user=user).count() == 1


def test_the_expiry_picker_offers_days_from_tomorrow_as_the_form_accepts(signed_in):
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    page = signed_in.get(reverse("keys")).content.decode()
    assert re.search(rf'<input type="date" name="expires_on" min="{tomorrow}"', page)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"budget": "1e30"}, "Enter at most $1,000,000."),
        ({"budget": "99999999999999999999"}, "Enter at most $1,000,000."),
        ({"budget": "0.00001"}, "Enter at least $0.0001."),
        ({"budget": "0.12345"}, "Use at most 4 decimal places, e.g. 0.0025."),
        ({"budget": "-3"}, "Enter at least $0.0001."),
        ({"budget": "lots"}, "Enter an amount in dollars, e.g. 5 or 0.25."),
        ({"expires_on": "9999-12-31"}, "Pick a day within the next hundred years, or leave it empty."),
    ],
    ids=["huge", "many-digits", "tiny", "five-decimals", "negative", "not-a-number", "year-9999"],
)
def test_a_refused_budget_or_expiry_gets_one_plain_message_and_keeps_the_name(
    signed_in, user, fields, message
):
    html = create(signed_in, name="renders", **fields).content.decode()
    assert re.findall(r'<p class="error" role="alert">(.*?)</p>', html) == [message]
    assert 'value="renders"' in html
    assert not ApiKey.objects.filter(user=user).exists()


def test_the_list_shows_use_tasks_spend_and_budget_left(
    signed_in, user, client, django_capture_on_commit_callbacks
):
    issued = issue_key(user, name="script", budget=Decimal("1"))
    api = Api(client, issued.secret, django_capture_on_commit_callbacks)
    task_id = api.submit(n=2).json()["task_id"]
    for _ in range(3):  # polls are requests too, but the column counts the tasks the key made
        api.get(f"/api/v1/tasks/{task_id}")
    client.force_login(user)
    html = signed_in.get(reverse("keys")).content.decode()
    row = html[html.index(f'data-key="{issued.key.prefix}"') :].split("</tr>")[0]
    assert "from 127.0.0.1" in row
    assert '<td data-label="Tasks" class="task-count">1</td>' in row
    assert '<th scope="col">Tasks</th>' in html and ">Requests<" not in html
    assert "$0.2412" in row and "$0.7588" in row  # spent, and left of $1


@pytest.mark.parametrize(("action", "code"), [("disable", "key_disabled"), ("delete", "key_deleted")])
def test_disable_and_delete_take_effect_on_the_next_api_call(
    signed_in, user, client, django_capture_on_commit_callbacks, action, code
):
    issued = issue_key(user, name="app")
    api = Api(client, issued.secret, django_capture_on_commit_callbacks)
    assert api.get("/api/v1/models").status_code == 200
    client.force_login(user)
    html = signed_in.post(reverse("key-action", args=[issued.key.pk, action]), headers={"HX-Request": "true"})
    assert html.content.decode().lstrip().startswith('<section id="api-keys"')
    response = api.get("/api/v1/models")
    assert response.status_code == 401 and response.json()["error"]["code"] == code


def test_a_disabled_key_can_be_enabled_again(signed_in, user, client, django_capture_on_commit_callbacks):
    issued = issue_key(user)
    signed_in.post(reverse("key-action", args=[issued.key.pk, "disable"]))
    signed_in.post(reverse("key-action", args=[issued.key.pk, "enable"]))
    assert (
        Api(client, issued.secret, django_capture_on_commit_callbacks).get("/api/v1/models").status_code
        == 200
    )


def test_a_deleted_key_leaves_the_list(signed_in, user):
    issued = issue_key(user, name="gone-soon")
    signed_in.post(reverse("key-action", args=[issued.key.pk, "delete"]))
    page = signed_in.get(reverse("keys")).content.decode()
    assert f'data-key="{issued.key.prefix}"' not in page  # the audit log below still names it
    assert "key.deleted" in page


def test_another_users_key_is_404_and_untouched(signed_in, other_user):
    theirs = issue_key(other_user)
    for action in ("disable", "delete"):
        assert signed_in.post(reverse("key-action", args=[theirs.key.pk, action])).status_code == 404
    assert ApiKey.objects.get(pk=theirs.key.pk).status == "active"


def test_an_unknown_action_is_404(signed_in, user):
    issued = issue_key(user)
    assert signed_in.post(reverse("key-action", args=[issued.key.pk, "explode"])).status_code == 404


def test_the_keys_page_needs_sign_in(client):
    assert client.get(reverse("keys")).status_code == 302
    assert client.post(reverse("key-create"), {"name": "x"}).status_code == 302
