import io
import re
import zipfile

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from playground.generations.models import Task
from playground.web.snippets import api_snippets


@pytest.fixture
def signed_in(client, user, catalog):
    client.force_login(user)
    return client


def test_the_status_partial_is_two_queries_and_286_when_terminal(
    make_task, signed_in, user, catalog, django_assert_num_queries
):
    task = make_task(user, catalog)
    with django_assert_num_queries(2):  # session; task with its events and its owner's session check
        response = signed_in.get(reverse("task", args=[task.pk]), headers={"HX-Request": "true"})
    assert response.status_code == 286
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="task-status"')
    assert "hx-get" not in html.split(">", 1)[0]  # a finished task is not polled
    assert 'class="gallery"' in html


def test_a_running_task_keeps_polling_every_second(make_task, signed_in, user, catalog, queue_only):
    task = make_task(user, catalog)
    response = signed_in.get(reverse("task", args=[task.pk]), headers={"HX-Request": "true"})
    assert response.status_code == 200
    head = response.content.decode().split(">", 1)[0]
    assert 'hx-trigger="every 1s"' in head and f'hx-get="/tasks/{task.pk}"' in head
    assert 'aria-live="polite"' in head


def test_without_htmx_the_task_url_is_the_full_page_with_a_meta_refresh_while_running(
    make_task, signed_in, user, catalog, queue_only
):
    task = make_task(user, catalog)
    html = signed_in.get(reverse("task", args=[task.pk])).content.decode()
    assert "<!doctype html>" in html
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in html
    assert 'id="run-form"' in html


def test_a_finished_task_page_shows_results_costs_events_and_api_snippets(
    make_task, signed_in, user, catalog
):
    task = make_task(user, catalog, n=2)
    html = signed_in.get(reverse("task", args=[task.pk])).content.decode()
    assert html.count("<figure>") >= 2
    assert "$0.2412" in html
    assert "Events (" in html and "Rendering image 2 of 2" in html
    assert "meta http-equiv" not in html
    for language, code in api_snippets("http://testserver", task.model.slug, task.input).items():
        assert f'<pre id="snippet-{language}"><code>{escape(code)}</code></pre>' in html


def test_a_failed_task_explains_itself_in_plain_words(make_task, signed_in, user, catalog):
    task = make_task(user, catalog)
    Task.objects.filter(pk=task.pk).update(
        status="failed",
        output=None,
        cost_actual=0,
        error={"code": "engine_crashed", "message": "The engine failed unexpectedly; nothing was charged."},
    )
    html = signed_in.get(reverse("task", args=[task.pk]), headers={"HX-Request": "true"}).content.decode()
    assert "It failed." in html and "nothing was charged" in html


def test_a_failure_after_the_work_was_billed_says_the_charge_stands(make_task, signed_in, user, catalog):
    task = make_task(user, catalog)
    Task.objects.filter(pk=task.pk).update(
        status="failed",
        output=None,
        cost_actual="0.0987",
        error={"code": "upstream_output_unavailable", "message": "Output 1 could not be downloaded."},
    )
    html = signed_in.get(reverse("task", args=[task.pk]), headers={"HX-Request": "true"}).content.decode()
    assert "It had already been billed, so its charge of $0.0987 stands." in html
    assert "<dt>Charged</dt><dd>$0.0987</dd>" in html


def test_a_task_cancelled_before_its_charge_is_known_says_so_and_polls_until_it_is(
    make_task, signed_in, user, catalog
):
    task = make_task(user, catalog)
    Task.objects.filter(pk=task.pk).update(status="cancelled", output=None, cost_actual=None)
    response = signed_in.get(reverse("task", args=[task.pk]), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert response.status_code == 200 and 'hx-trigger="every 1s"' in html.split(">", 1)[0]
    assert "It may have been billed before the cancel reached it" in html
    assert "Nothing was charged" not in html
    assert '<dt>Charged</dt><dd><span class="muted">not known yet</span></dd>' in html

    Task.objects.filter(pk=task.pk).update(cost_actual="0.0987", updated_at=timezone.now())
    response = signed_in.get(reverse("task", args=[task.pk]), headers={"HX-Request": "true"})
    assert response.status_code == 286
    assert "its charge of $0.0987 stands." in response.content.decode()


def test_another_users_task_page_is_404(make_task, signed_in, other_user, catalog):
    task = make_task(other_user, catalog)
    for name in ("task", "task-zip", "task-cancel"):
        method = signed_in.post if name == "task-cancel" else signed_in.get
        assert method(reverse(name, args=[task.pk])).status_code == 404
    assert Task.objects.get(pk=task.pk).status == "succeeded"


def test_download_all_is_a_zip_of_the_images(make_task, signed_in, user, catalog):
    task = make_task(user, catalog, n=3)
    response = signed_in.get(reverse("task-zip", args=[task.pk]))
    assert response["Content-Type"] == "application/zip"
    assert response.streaming  # read from storage as it goes out, never built in memory
    body = b"".join(response.streaming_content)
    assert int(response["Content-Length"]) == len(body)
    archive = zipfile.ZipFile(io.BytesIO(body))
    names = archive.namelist()
    assert names == [f"{task.pk}-0.png", f"{task.pk}-1.png", f"{task.pk}-2.png"]
    for name, item in zip(names, task.output["images"], strict=True):
        with default_storage.open(item["file"], "rb") as stored:
            assert archive.read(name) == stored.read()


def test_cancel_from_the_page_stops_a_queued_task(make_task, signed_in, user, catalog, queue_only):
    task = make_task(user, catalog)
    response = signed_in.post(reverse("task-cancel", args=[task.pk]), headers={"HX-Request": "true"})
    assert response.status_code == 286
    assert "Cancelled. Nothing was charged." in response.content.decode()
    assert Task.objects.get(pk=task.pk).status == "cancelled"


def test_a_video_task_shows_a_player(make_task, signed_in, user, catalog):
    task = make_task(user, catalog, model="viduq3-pro", duration=1, resolution="540p")
    html = signed_in.get(reverse("task", args=[task.pk]), headers={"HX-Request": "true"}).content.decode()
    assert "<video controls" in html and ".webm" in html


def poll(client, task_id, etag=None):
    """The htmx poll of the status panel; with `etag`, as the browser revalidates its cached copy."""
    headers = {"HX-Request": "true", **({"If-None-Match": etag} if etag else {})}
    return client.get(reverse("task", args=[task_id]), headers=headers)


def test_an_unchanged_running_task_answers_the_poll_with_304_in_two_queries(
    make_task, signed_in, user, catalog, queue_only, django_assert_num_queries
):
    from playground.generations.lifecycle import transition

    task = make_task(user, catalog)
    transition(task.pk, "processing", attempts=1)  # running (a queued task's poll also counts its place: 3)
    with django_assert_num_queries(2):
        first = poll(signed_in, task.pk)
    assert first.status_code == 200
    etag = first["ETag"]
    assert f'data-etag="{etag.replace(chr(34), "&quot;")}"' in first.content.decode()
    assert "no-cache" in first["Cache-Control"] and "private" in first["Cache-Control"]
    assert {"HX-Request", "Cookie"} <= {v.strip() for v in first["Vary"].split(",")}
    with django_assert_num_queries(2):  # session, task with its events and owner: nothing rendered
        again = poll(signed_in, task.pk, etag)
    assert again.status_code == 304
    assert again.content == b""
    assert again["ETag"] == etag


def test_a_queued_tasks_unchanged_panel_is_304_in_three_queries_and_says_its_place_in_line(
    make_task, signed_in, user, catalog, queue_only, django_assert_num_queries
):
    from playground.generations.services import cancel_task

    ahead = make_task(user, catalog, prompt="ahead")
    task = make_task(user, catalog)
    first = poll(signed_in, task.pk)
    html = first.content.decode()
    assert "2nd in line: 1 task ahead of yours." in html
    assert 'role="progressbar" aria-label="Waiting to start" aria-describedby="in-line-' in html
    assert "<progress" not in html  # nothing to measure yet
    with django_assert_num_queries(3):  # session, the task's stamp, its place in line: nothing rendered
        again = poll(signed_in, task.pk, first["ETag"])
    assert again.status_code == 304
    cancel_task(ahead)
    moved = poll(signed_in, task.pk, first["ETag"])  # its row is the same, its place is not
    assert moved.status_code == 200
    assert "1st in line: it starts as soon as a worker is free." in moved.content.decode()


def test_a_running_tasks_panel_fills_its_progress_bar_as_the_engine_reports(
    make_task, signed_in, user, catalog, queue_only, django_assert_num_queries
):
    from playground.generations.jobs import TaskRunContext
    from playground.generations.lifecycle import transition

    task = make_task(user, catalog, n=4)
    transition(task.pk, "processing", attempts=1)
    started = poll(signed_in, task.pk)
    html = started.content.decode()
    assert 'aria-label="Working; how far it is cannot be told"' in html and "<progress" not in html
    assert "in line" not in html
    TaskRunContext(Task.objects.get(pk=task.pk)).progress(0.25, step_done=True)  # as the worker does
    quarter = poll(signed_in, task.pk, started["ETag"])
    assert quarter.status_code == 200
    assert '<progress max="100" value="25" aria-label="Progress"' in quarter.content.decode()
    assert "data-progress-unknown" not in quarter.content.decode()
    with django_assert_num_queries(2):
        assert poll(signed_in, task.pk, quarter["ETag"]).status_code == 304
    TaskRunContext(Task.objects.get(pk=task.pk)).progress(0.29, step_done=True)
    assert '<progress max="100" value="29"' in poll(signed_in, task.pk).content.decode()  # not 28.99…
    TaskRunContext(Task.objects.get(pk=task.pk)).progress(0.999, step_done=True)
    almost = poll(signed_in, task.pk, quarter["ETag"]).content.decode()
    assert '<progress max="100" value="99"' in almost  # not 100 before it has ended


def test_a_new_event_or_status_gives_the_panel_a_new_etag(make_task, signed_in, user, catalog, queue_only):
    from playground.generations.lifecycle import record_message, transition

    task = make_task(user, catalog)
    queued = poll(signed_in, task.pk)["ETag"]
    transition(task.pk, "processing", attempts=1)
    processing = poll(signed_in, task.pk, queued)
    assert processing.status_code == 200 and 'data-status="processing"' in processing.content.decode()
    record_message(task.pk, "processing", "Rendering image 1 of 1.")
    progressed = poll(signed_in, task.pk, processing["ETag"])
    assert progressed.status_code == 200 and "Rendering image 1 of 1." in progressed.content.decode()


def test_a_task_that_ended_answers_286_whatever_etag_the_browser_holds(
    make_task, signed_in, user, catalog, queue_only
):
    from playground.generations.services import cancel_task

    task = make_task(user, catalog)
    running = poll(signed_in, task.pk)["ETag"]
    cancel_task(task)
    for etag in (running, "*"):
        ended = poll(signed_in, task.pk, etag)
        assert ended.status_code == 286  # htmx stops polling, with the final panel
        assert "Cancelled. Nothing was charged." in ended.content.decode()
        assert not ended.has_header("ETag")


def test_a_running_tasks_elapsed_time_is_given_for_the_page_to_tick_on(
    make_task, signed_in, user, catalog, queue_only
):
    from playground.generations.services import cancel_task

    task = make_task(user, catalog)
    assert re.search(r'data-elapsed="\d+\.\d"', poll(signed_in, task.pk).content.decode())
    cancel_task(task)
    assert "data-elapsed=" not in poll(signed_in, task.pk).content.decode()  # a final, fixed time


def test_back_and_forward_get_the_whole_page_not_the_panel(make_task, signed_in, user, catalog):
    """htmx restores history by asking again with HX-Request and HX-History-Restore-Request, and
    puts the answer in place of the whole body: it must be the page."""
    task = make_task(user, catalog)
    headers = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    response = signed_in.get(reverse("task", args=[task.pk]), headers=headers)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<header class="top">' in html and 'id="run-form"' in html and f'data-task="{task.pk}"' in html
    assert "HX-History-Restore-Request" in response["Vary"]


def test_a_silent_worker_is_told_in_the_panel_even_to_a_poll_that_held_the_old_etag(
    make_task, signed_in, user, catalog, queue_only, settings
):
    """A worker that missed two heartbeats may have died: the panel says so at the next poll (the
    unchanged poll's 304 knows it too), instead of a task that looks running and has stopped."""
    from datetime import timedelta

    from playground.generations.lifecycle import transition

    task = make_task(user, catalog)
    lease = timedelta(seconds=settings.PLAYGROUND_TASK_LEASE)
    transition(task.pk, "processing", attempts=1, lease_expires_at=timezone.now() + lease)
    healthy = poll(signed_in, task.pk)
    assert "data-worker-silent" not in healthy.content.decode()
    assert poll(signed_in, task.pk, healthy["ETag"]).status_code == 304
    # The last heartbeat was three heartbeats ago (the lease is renewed with each).
    heard = timezone.now() - timedelta(seconds=3 * settings.PLAYGROUND_TASK_HEARTBEAT)
    Task.objects.filter(pk=task.pk).update(lease_expires_at=heard + lease)
    silent = poll(signed_in, task.pk, healthy["ETag"])
    assert silent.status_code == 200
    assert "has not reported for a while" in silent.content.decode()
    assert poll(signed_in, task.pk, silent["ETag"]).status_code == 304  # and stays told


def test_the_elapsed_time_counts_from_submission_across_a_retry(
    make_task, signed_in, user, catalog, queue_only
):
    """A retry starts the task again (a new `started_at`); what the person has waited does not."""
    from datetime import timedelta

    from playground.generations.lifecycle import transition

    task = make_task(user, catalog)
    Task.objects.filter(pk=task.pk).update(created_at=timezone.now() - timedelta(seconds=95))
    transition(task.pk, "processing", attempts=1)
    transition(task.pk, "queued", message="Worker lost; retrying (attempt 2).")
    transition(task.pk, "processing", attempts=2)
    waited = float(re.search(r'data-elapsed="([\d.]+)"', poll(signed_in, task.pk).content.decode())[1])
    assert 95 <= waited < 120


def test_a_team_members_unchanged_poll_is_304_in_three_queries(
    make_task, client, user, other_user, catalog, queue_only, django_assert_num_queries
):
    """In a team's workspace the poll also reads the membership (with the account, which it checks
    the session against, in one statement): session, membership, task stamp."""
    from playground.generations.lifecycle import transition
    from playground.teams.services import add_member, create_team

    team = create_team("studio", other_user)
    add_member(team, user)
    task = make_task(other_user, catalog)  # a teammate's
    Task.objects.filter(pk=task.pk).update(team=team)
    transition(task.pk, "processing", attempts=1)
    client.force_login(user)
    client.post(reverse("workspace"), {"team": "studio"})
    first = poll(client, task.pk)
    assert first.status_code == 200 and "by " + other_user.username in first.content.decode()
    with django_assert_num_queries(3):
        again = poll(client, task.pk, first["ETag"])
    assert again.status_code == 304
