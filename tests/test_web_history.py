import re

import pytest
from django.urls import reverse

from playground.generations.models import Task

from .helpers import SEED, seed_input


@pytest.fixture
def signed_in(client, user, catalog):
    client.force_login(user)
    return client


def bulk_tasks(owner, entry, count, **fields):
    Task.objects.bulk_create(
        Task(
            owner=owner,
            model=entry,
            input=seed_input(prompt=f"prompt number {i}"),
            engine="local",
            cost_estimate="0.1206",
            request_id="r",
            request_hash=f"h{i}",
            **fields,
        )
        for i in range(count)
    )


def history_queries(client, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(reverse("history")).status_code == 200
    return len(captured)


def test_the_history_page_costs_the_same_queries_for_100_tasks_as_for_1(
    signed_in, user, catalog, django_assert_max_num_queries
):
    bulk_tasks(user, catalog[SEED], 1)
    one = history_queries(signed_in, django_assert_max_num_queries)
    bulk_tasks(user, catalog[SEED], 99)
    hundred = history_queries(signed_in, django_assert_max_num_queries)
    assert one == hundred <= 6


def test_history_lists_newest_first_with_thumbnails_and_links(make_task, signed_in, user, catalog):
    first = make_task(user, catalog, prompt="the first one")
    second = make_task(user, catalog, prompt="the second one")
    html = signed_in.get(reverse("history")).content.decode()
    assert html.index(second.pk) < html.index(first.pk)
    assert f'href="/tasks/{first.pk}"' in html
    assert '<td class="thumb"><a href=' in html and "/files/" in html


def test_history_filters_by_model_status_and_prompt_text(make_task, signed_in, user, catalog, queue_only):
    fox = make_task(user, catalog, prompt="a fox in snow")
    make_task(user, catalog, prompt="a cat")
    Task.objects.filter(pk=fox.pk).update(status="failed")
    by_text = signed_in.get(reverse("history"), {"q": "FOX"}).content.decode()
    assert fox.pk in by_text and "a cat" not in by_text
    by_status = signed_in.get(reverse("history"), {"status": "failed"}).content.decode()
    assert fox.pk in by_status and "a cat" not in by_status
    by_model = signed_in.get(reverse("history"), {"model": "gpt-image-2"}).content.decode()
    assert "No tasks match these filters" in by_model


def test_history_is_paginated(signed_in, user, catalog):
    bulk_tasks(user, catalog[SEED], 30)
    page_two = signed_in.get(reverse("history"), {"page": 2}).content.decode()
    assert "Page 2 of 2" in page_two and page_two.count('name="ids"') == 5


def test_history_shows_only_the_users_own_tasks(make_task, signed_in, other_user, catalog):
    theirs = make_task(other_user, catalog)
    assert theirs.pk not in signed_in.get(reverse("history")).content.decode()


def test_compare_shows_parameters_side_by_side_with_differences_marked(make_task, signed_in, user, catalog):
    a = make_task(user, catalog, prompt="same", size="1:1")
    b = make_task(user, catalog, prompt="same", size="16:9")
    html = signed_in.get(reverse("compare"), {"ids": [a.pk, b.pk]}).content.decode()
    rows = {
        re.search(r'<th scope="row">([^<]+?)(?: <span|</th>)', row).group(1): row
        for row in html.split("<tr")[1:]
        if 'scope="row"' in row
    }
    assert rows["Aspect ratio"].startswith(' class="differs"')  # by the form's labels, not field names
    assert "<td>1:1</td><td>16:9</td>" in rows["Aspect ratio"]
    assert not rows["Prompt"].startswith(' class="differs"')
    assert "<td>Gemini 3 Pro Image</td>" in rows["Model"]
    assert html.count('<img src="http://testserver/files/') == 2


def test_compare_needs_two_of_your_own_tasks(make_task, signed_in, user, other_user, catalog):
    mine = make_task(user, catalog)
    theirs = make_task(other_user, catalog)
    html = signed_in.get(reverse("compare"), {"ids": [mine.pk, theirs.pk]}).content.decode()
    assert "Pick two or more tasks" in html
    assert theirs.pk not in html
