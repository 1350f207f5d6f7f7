import time
from decimal import Decimal

from django.utils import timezone

from playground.access.ratelimit import forget_leases
from playground.generations.models import Task
from playground.generations.presenters import rendered_bodies
from playground.keys.services import forget_recent_keys

from .fixtures_http import Reply
from .helpers import RATE_COUNTER_QUERIES


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
        "message": "Reference images, item 1: The server answered 404 Not Found.",
    }


def test_every_response_carries_a_request_id(api, client):
    assert api.get("/api/v1/tasks/nope")["X-Request-Id"].startswith("req_")
    assert client.get("/api/v1/nothing-here")["X-Request-Id"]
    assert client.get("/", headers={"X-Request-Id": "trace-12345678"})["X-Request-Id"] == "trace-12345678"


def test_an_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def poll(api, task_id, etag=None):
    """A conditional GET as a polling client with a cache sends it (Api.get expects JSON bodies)."""
    headers = api.headers({"If-None-Match": etag} if etag else {})
    return api.client.get(f"/api/v1/tasks/{task_id}", headers=headers)


def test_an_unchanged_task_answers_a_conditional_poll_with_304_and_no_body(api):
    task_id = api.submit().json()["task_id"]
    first = api.get(f"/api/v1/tasks/{task_id}")
    etag = first["ETag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert "no-cache" in first["Cache-Control"] and "private" in first["Cache-Control"]
    for sent in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = poll(api, task_id, sent)
        assert again.status_code == 304, sent
        assert again.content == b""
        assert again["ETag"] == etag
    assert poll(api, task_id, '"something-else"').json() == first.json()


def test_a_poll_is_one_statement_and_an_unchanged_one_reads_no_task_row(
    api, django_assert_num_queries, settings
):
    """What a polling client costs: one raw statement (the key is kept for a second, its rate count
    leased, its use recorded once a minute). The task's row is read only when it changed since this
    process last rendered it; a poll with or without If-None-Match then loads nothing else."""
    settings.PLAYGROUND_KEY_CACHE_SECONDS = 60  # the steady state, however slow the machine
    task_id = api.submit().json()["task_id"]
    with django_assert_num_queries(2):  # the stamp, then the row it has not rendered yet
        first = poll(api, task_id)
    for etag, status in ((None, 200), (first["ETag"], 304)) * 2:
        with django_assert_num_queries(1) as captured:
            again = poll(api, task_id, etag)
        assert again.status_code == status
        assert "MAX(" in captured.captured_queries[0]["sql"]  # task_stamp's, not the ORM's row
    assert again["ETag"] == first["ETag"]
    assert poll(api, task_id).content == first.content


def test_a_poll_after_the_key_cache_and_the_lease_ran_out_reads_the_key_and_counts_again(
    api, django_assert_num_queries
):
    task_id = api.submit().json()["task_id"]
    poll(api, task_id)
    forget_leases()
    forget_recent_keys()
    # The key with its account, the rate count (RATE_COUNTER_QUERIES statements), the task's stamp.
    with django_assert_num_queries(2 + RATE_COUNTER_QUERIES):
        assert poll(api, task_id).status_code == 200


def test_a_plain_poll_shows_every_change_of_the_task(api, queue_only):
    """Polls without If-None-Match (what MindVideo clients send) are answered from the body
    rendered for the task's ETag: each change of the task shows at the next poll all the same."""
    from playground.generations.lifecycle import record_charge, transition

    task_id = api.submit().json()["task_id"]
    seen = [poll(api, task_id).json(), poll(api, task_id).json()]
    assert transition(task_id, "processing", attempts=1)
    seen.append(poll(api, task_id).json())
    assert transition(task_id, "failed", error="Upstream said no", finished_at=timezone.now())
    seen.append(poll(api, task_id).json())
    assert record_charge(task_id, Decimal("0.02"), "Failed upstream")
    seen.append(poll(api, task_id).json())
    assert [body["status"] for body in seen] == ["queued", "queued", "processing", "failed", "failed"]
    assert seen[3]["error"] == "Upstream said no" and seen[3]["cost_actual"] is None
    assert seen[4]["cost_actual"] == 0.02
    rendered_bodies.clear()  # what this process kept is what a fresh render gives
    assert poll(api, task_id).json() == seen[4]


def test_the_etag_changes_whenever_the_task_does(api, queue_only):
    from playground.generations.lifecycle import transition
    from playground.generations.services import cancel_task

    task_id = api.submit().json()["task_id"]
    queued = poll(api, task_id)["ETag"]
    assert transition(task_id, "processing", attempts=1)
    processing = poll(api, task_id, queued)
    assert processing.status_code == 200 and processing.json()["status"] == "processing"
    cancel_task(Task.objects.get(pk=task_id))
    cancelled = poll(api, task_id, processing["ETag"])
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert len({queued, processing["ETag"], cancelled["ETag"]}) == 3


def test_the_etag_changes_with_the_output_urls_token_window(api, settings, monkeypatch):
    task_id = api.submit().json()["task_id"]
    today = poll(api, task_id)
    next_window = time.time() + settings.PLAYGROUND_FILE_URL_WINDOW
    monkeypatch.setattr(time, "time", lambda: next_window)
    tomorrow = poll(api, task_id, today["ETag"])
    assert tomorrow.status_code == 200
    assert tomorrow["ETag"] != today["ETag"]
    assert tomorrow.json()["output"] != today.json()["output"]  # new tokens in the URLs


def test_a_conditional_poll_is_still_authenticated_and_owner_only(api, other_api, client):
    task_id = api.submit().json()["task_id"]
    etag = poll(api, task_id)["ETag"]
    assert client.get(f"/api/v1/tasks/{task_id}", headers={"If-None-Match": etag}).status_code == 401
    assert poll(other_api, task_id, etag).status_code == 404


def test_a_poll_shows_the_models_new_slug_once_it_is_renamed(api, catalog):
    """The body names the task's model by its slug, which the admin can change: the next poll, with
    or without If-None-Match, shows the new one (not a body kept, or a 304, from before)."""
    from .helpers import SEED

    task_id = api.submit().json()["task_id"]
    first = poll(api, task_id)
    assert first.json()["model"] == SEED
    entry = catalog[SEED]
    entry.slug = "renamed-model"
    entry.save()  # what the admin's change form does
    assert poll(api, task_id).json()["model"] == "renamed-model"
    again = poll(api, task_id, first["ETag"])
    assert again.status_code == 200 and again.json()["model"] == "renamed-model"


def test_a_queued_task_is_polled_in_two_statements_the_stamp_and_its_place_in_line(
    api, queue_only, django_assert_num_queries, settings
):
    """A queued task's place moves while its row stays the same, so a poll of it also counts its
    place (one statement); the place is part of the ETag, and a poll after the line moved gets the
    new body, not 304 Not Modified."""
    from playground.generations.services import cancel_task

    settings.PLAYGROUND_KEY_CACHE_SECONDS = 60
    ahead = api.submit(prompt="ahead").json()
    task_id = api.submit(prompt="behind").json()["task_id"]
    assert ahead["queue_position"] == 1
    first = poll(api, task_id)
    assert first.json()["queue_position"] == 2
    for etag, status in ((None, 200), (first["ETag"], 304)):
        with django_assert_num_queries(2) as captured:
            again = poll(api, task_id, etag)
        assert again.status_code == status
        assert "MAX(" in captured.captured_queries[0]["sql"]  # task_stamp's
    cancel_task(Task.objects.get(pk=ahead["task_id"]))
    moved = poll(api, task_id, first["ETag"])
    assert moved.status_code == 200
    assert (moved.json()["queue_position"], moved.json()["progress"]) == (1, None)


def test_a_running_tasks_progress_is_a_new_body_at_the_next_poll(api, queue_only):
    from playground.generations.jobs import TaskRunContext
    from playground.generations.lifecycle import transition

    task_id = api.submit().json()["task_id"]
    assert transition(task_id, "processing", attempts=1)
    started = poll(api, task_id)
    assert (started.json()["progress"], started.json()["queue_position"]) == (None, None)
    TaskRunContext(Task.objects.get(pk=task_id)).progress(0.5, step_done=True)  # as the worker does
    halfway = poll(api, task_id, started["ETag"])
    assert halfway.status_code == 200 and halfway.json()["progress"] == 0.5
    assert poll(api, task_id, halfway["ETag"]).status_code == 304
    assert transition(task_id, "succeeded", cost_actual=Decimal("0.1206"))
    assert poll(api, task_id).json()["progress"] == 1.0


def test_a_list_gives_each_queued_task_its_place_in_line(api, queue_only):
    ids = [api.submit(prompt=f"task {number}").json()["task_id"] for number in range(3)]
    listed = api.get("/api/v1/tasks").json()["data"]
    assert [(t["task_id"], t["queue_position"], t["progress"]) for t in listed] == [
        (ids[2], 3, None),
        (ids[1], 2, None),
        (ids[0], 1, None),
    ]
