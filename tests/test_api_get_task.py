from playground.generations.models import Task

from .fixtures_http import Reply


def test_it_returns_the_task(api):
    created = api.submit().json()
    body = api.get(f"/api/v1/tasks/{created['task_id']}").json()
    assert body["task_id"] == created["task_id"]
    assert body["request_id"] == created["request_id"]
    assert body["model"] == "gemini-3-pro-image-preview-official"


def test_another_owners_task_is_404_exactly_like_a_missing_one(api, other_api):
    task_id = api.submit().json()["task_id"]
    theirs = other_api.get(f"/api/v1/tasks/{task_id}")
    missing = other_api.get("/api/v1/tasks/task_does_not_exist")
    assert theirs.status_code == missing.status_code == 404
    strip = lambda r: {k: v for k, v in r.json()["error"].items() if k != "request_id"}  # noqa: E731
    assert strip(theirs) == strip(missing)
    for path in (f"/api/v1/tasks/{task_id}/events",):
        assert other_api.get(path).status_code == 404
    assert other_api.post(f"/api/v1/tasks/{task_id}/cancel").status_code == 404
    assert Task.objects.get(pk=task_id).status == "succeeded"


def test_a_failed_task_reports_its_error_and_charges_nothing(api, http_server):
    # The reference URL passes submit-time checks (an allowed host); when the task runs, the server
    # answers with an HTML error page instead of an image.
    page = Reply(404, b"<!doctype html><h1>Not found</h1>", {"Content-Type": "text/html"})
    task_id = api.submit(image_urls=[http_server.route("/a.png", page)]).json()["task_id"]
    body = api.get(f"/api/v1/tasks/{task_id}").json()
    assert body["status"] == "failed"
    assert body["cost_actual"] == 0
    assert body["output"] is None
    assert body["error"] == {
        "code": "input_unavailable",
        "message": "input.image_urls.0: The server answered 404 Not Found.",
    }


def test_every_response_carries_a_request_id(api, client):
    assert api.get("/api/v1/tasks/nope")["X-Request-Id"].startswith("req_")
    assert client.get("/api/v1/nothing-here")["X-Request-Id"]
    assert client.get("/", headers={"X-Request-Id": "trace-12345678"})["X-Request-Id"] == "trace-12345678"


def test_an_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
