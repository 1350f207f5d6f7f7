import csv
import io
from decimal import Decimal

from django.urls import reverse

from playground.keys.services import issue_key

from .helpers import Api


def test_usage_shows_spend_per_key_model_and_day_with_a_chart_and_csv(
    client, user, catalog, make_task, django_capture_on_commit_callbacks
):
    issued = issue_key(user, name="script")
    Api(client, issued.secret, django_capture_on_commit_callbacks).submit(n=2)
    make_task(user, catalog, model="gpt-image-2")
    client.force_login(user)
    html = client.get(reverse("usage")).content.decode()
    assert "<svg" in html and html.count('class="bar"') == 30
    assert "script (" in html and "browser" in html
    assert "gemini-3-pro-image-preview-official" in html and "gpt-image-2" in html
    assert "$0.2547" in html  # 0.2412 + 0.0135
    rows = list(csv.reader(io.StringIO(client.get(reverse("usage-csv")).content.decode())))
    assert rows[0] == ["group", "label", "tasks", "succeeded", "spend"]
    today = [r for r in rows if r[0] == "day" and r[2] != "0"]
    assert len(today) == 1 and Decimal(today[0][4]) == Decimal("0.2547")
    assert ["model", "gpt-image-2", "1", "1", "0.0135"] in rows


def test_usage_counts_only_the_users_own_tasks(client, user, other_user, catalog, make_task):
    make_task(other_user, catalog)
    client.force_login(user)
    assert "across <strong>0</strong> tasks" in client.get(reverse("usage")).content.decode()
