import pytest

from playground.generations.models import Task


@pytest.fixture
def five_tasks(api, queue_only):
    ids = [api.submit(prompt=f"prompt {i}").json()["task_id"] for i in range(5)]
    Task.objects.filter(pk=ids[1]).update(status="failed")
    return ids


def test_it_lists_the_owners_tasks_newest_first(api, other_api, five_tasks):
    other_api.submit()
    body = api.get("/api/v1/tasks").json()
    assert [t["task_id"] for t in body["data"]] == list(reversed(five_tasks))
    assert body["next_cursor"] is None


def test_it_pages_with_a_cursor_without_gaps_or_repeats(api, five_tasks):
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = api.get("/api/v1/tasks", params).json()
        seen += [t["task_id"] for t in body["data"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(five_tasks))


def test_it_filters_by_status_and_model(api, five_tasks):
    failed = api.get("/api/v1/tasks", {"status": "failed"}).json()["data"]
    assert [t["task_id"] for t in failed] == [five_tasks[1]]
    assert api.get("/api/v1/tasks", {"model": "gpt-image-2"}).json()["data"] == []
    by_model = api.get("/api/v1/tasks", {"model": "gemini-3-pro-image-preview-official"}).json()["data"]
    assert len(by_model) == 5


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"status": "done"}, 422, "status"),
        ({"limit": "0"}, 422, "limit"),
        ({"limit": "many"}, 422, "limit"),
        ({"limit": "101"}, 422, "limit"),
        ({"cursor": "!!!"}, 400, "cursor"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, 400, "cursor"),
    ],
)
def test_it_refuses_bad_parameters_naming_them(api, params, status, field):
    response = api.get("/api/v1/tasks", params)
    assert response.status_code == status
    assert response.json()["error"]["field"] == field
