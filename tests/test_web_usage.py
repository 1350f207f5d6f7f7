import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from playground.keys.services import issue_key
from playground.web.charts import axis_step, money_label

from .helpers import Api


def test_usage_shows_spend_per_key_model_and_day_with_a_chart_and_csv(
    client, user, catalog, make_task, django_capture_on_commit_callbacks
):
    issued = issue_key(user, name="script")
    Api(client, issued.secret, django_capture_on_commit_callbacks).submit(n=2)
    make_task(user, catalog, model="gpt-image-2")
    client.force_login(user)
    html = client.get(reverse("usage")).content.decode()
    assert "<svg" in html and html.count('class="bar"') == 1  # one day with spend
    assert "script (" in html and "browser" in html
    assert "$0.2547" in html  # 0.2412 + 0.0135
    rows = list(csv.reader(io.StringIO(client.get(reverse("usage-csv")).content.decode())))
    assert rows[0] == ["group", "label", "tasks", "succeeded", "spend"]
    today = [r for r in rows if r[0] == "day" and r[2] != "0"]
    assert len(today) == 1 and Decimal(today[0][4]) == Decimal("0.2547")
    assert ["model", "gpt-image-2", "1", "1", "0.0135"] in rows


def test_the_per_model_table_names_models_by_title_with_the_slug_beside(client, user, catalog, make_task):
    make_task(user, catalog, model="gpt-image-2")
    client.force_login(user)
    html = client.get(reverse("usage")).content.decode()
    title = catalog["gpt-image-2"].title
    assert title != "gpt-image-2"
    assert f'{title}<br><code class="muted small">gpt-image-2</code>' in html


def test_the_chart_has_a_money_axis_and_the_dates_of_the_range(client, user, catalog, make_task):
    make_task(user, catalog)  # $0.1206 today
    client.force_login(user)
    html = client.get(reverse("usage")).content.decode()
    axis = re.findall(r'<text x="52" y="[\d.]+" text-anchor="end">([^<]+)</text>', html)
    assert axis == ["$0.00", "$0.05", "$0.10", "$0.15"]
    today = timezone.localdate()
    first, last = today - timedelta(days=29), today
    date_label = r'text-anchor="(start|middle|end)"(?: class="minor")?>([A-Z][a-z]{2} \d+)</text>'
    dates = re.findall(date_label, html)
    assert dates[0] == ("start", f"{first:%b} {first.day}")
    assert dates[-1] == ("end", f"{last:%b} {last.day}")
    assert [text for _, text in dates[1:-1]] == [
        f"{day:%b} {day.day}" for day in (first + timedelta(days=n) for n in (5, 10, 15, 20))
    ]
    assert f"Spend per day, {first:%b} {first.day} to {last:%b} {last.day}" in html


@pytest.mark.parametrize(
    ("peak", "step", "label"),
    [
        ("0.3933", "0.1", "$0.30"),
        ("0.1206", "0.05", "$0.15"),
        ("2.5", "1", "$3"),
        ("13", "5", "$15"),
        ("1234", "500", "$1,500"),
        ("0", "0.25", "$0.75"),
    ],
)
def test_the_money_axis_has_round_steps(peak, step, label):
    found = axis_step(Decimal(peak))
    assert found == Decimal(step)
    assert money_label(found * 3, found) == label


def test_usage_counts_only_the_users_own_tasks(client, user, other_user, catalog, make_task):
    make_task(other_user, catalog)
    client.force_login(user)
    assert "across <strong>0</strong> tasks" in client.get(reverse("usage")).content.decode()


def test_two_demo_passes_with_one_name_are_two_rows_told_apart(
    client, user, catalog, django_capture_on_commit_callbacks
):
    """Usage used to add two passes of the same name into one row."""
    from django.utils.formats import date_format

    from playground.access.passes import create_pass
    from playground.generations.services import submit_task

    from .helpers import SEED, seed_input

    first = create_pass(user, "Friday demo", [SEED], Decimal(5), 24)
    second = create_pass(user, "Friday demo", [SEED], Decimal(5), 48)
    for demo_pass, count in ((first, 1), (second, 2)):
        for number in range(count):
            with django_capture_on_commit_callbacks(execute=True):
                submit_task(
                    user, SEED, seed_input(), request_id=f"req_{number}", source="web", demo_pass=demo_pass
                )
    client.force_login(user)
    rows = list(csv.reader(io.StringIO(client.get(reverse("usage-csv")).content.decode())))
    passes = sorted((r[1], r[2]) for r in rows if r[0] == "key" and r[1].startswith("demo pass"))
    ends = [date_format(timezone.localtime(p.expires_at), "j M Y") for p in (first, second)]
    assert passes == sorted(
        [
            (f"demo pass: Friday demo (until {ends[0]})", "1"),
            (f"demo pass: Friday demo (until {ends[1]})", "2"),
        ]
    )
