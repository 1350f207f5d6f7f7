"""Money is exact: `cost_actual` is what a task really cost, also when it is cancelled or fails after
an upstream platform billed it; until that is known, spend checks count the task at its estimate.

Real worker processes run `mindvideo` tasks against a fake platform on 127.0.0.1 (tests/upstream.py),
whose downloads are slowed down so that a cancel lands while the outputs come home. The reaper's
part (a charge nobody was left to record) runs in-process against the same fake.
"""

from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from playground.access.passes import create_pass, pass_token
from playground.catalog.schema_forms import as_form_data
from playground.engines.mindvideo import idempotency_key
from playground.generations.lifecycle import transition
from playground.generations.models import Status, Task
from playground.generations.reaper import reap_expired_tasks
from playground.generations.services import committed_spend
from playground.keys.credentials import store_upstream_key
from playground.keys.services import issue_key

from .conftest import WORKER
from .helpers import SEED, Api, enter_demo, money, seed_input, started_by_dead_worker, wait_for
from .upstream import Reply, billed, png_bytes, worker_env

pytestmark = pytest.mark.django_db(transaction=True)

CAP = Decimal("1.00")
CHARGE = Decimal("0.0987")  # what the fake platform bills per task
ESTIMATE = Decimal("0.1206")  # our estimate of one 1K image
TRIES = 20


@pytest.fixture
def platform(settings, fake, user, spawn):
    """Tasks run on `mindvideo` against the fake, with the user's key, by a real worker; every
    output download takes a second: the window the test's cancel must land in, on a busy machine
    too (half a second was once not enough while other suites ran)."""
    settings.PLAYGROUND_ENGINE = "mindvideo"
    store_upstream_key(user, fake.key)
    fake.always["file"] = Reply(200, png_bytes(), "image/png", delay=1.0)
    spawn(*WORKER, **worker_env(fake))
    return fake


def downloading(task_id: str) -> bool:
    return Task.objects.get(pk=task_id).events.filter(message__startswith="Downloading output 1 ").exists()


def settled(tasks) -> bool:
    return not tasks.filter(cost_actual__isnull=True).exists()


def cancel_in_the_download_window(fake, tries, submit, cancel, tasks):
    """`tries` times: submit a task (odd tries with two outputs), cancel it while its first output
    downloads, and at once try the next. After every step, what the platform billed and what
    budgets count stay within CAP. Returns how many submits were accepted."""
    accepted = 0
    for attempt in range(tries):
        outputs = 1 + attempt % 2  # one: the run's completion loses to the cancel; two: it stops early
        fake.output_urls = lambda task_id, n=outputs: [
            f"{fake.base_url}/files/{task_id}/{i}.png" for i in range(n)
        ]
        task_id = submit(f"try {attempt}")
        if task_id is not None:
            accepted += 1
            assert wait_for(lambda task_id=task_id: downloading(task_id), timeout=20)
            cancel(task_id)
        assert committed_spend(tasks) <= CAP  # charges known + estimates of the rest
        assert billed(fake) <= CAP
    assert wait_for(lambda: settled(tasks), timeout=30), "a cancelled task's charge was never recorded"
    print(f"{accepted} of {tries} tries accepted, all cancelled while downloading")
    return accepted


def check_every_charge_stands(fake, tasks, accepted):
    assert accepted >= 5  # enough tasks were cancelled late for the cap to matter
    assert tasks.count() == accepted == len(fake.tasks)
    for task in tasks:
        assert (task.status, task.cost_actual, task.output) == ("cancelled", CHARGE, None)
        assert task.events.filter(
            message="Cancelled after MindVideo had finished the task: its charge of $0.0987 stands."
        ).exists()
    with fake.lock:
        assert {t["status"] for t in fake.tasks.values()} == {"succeeded"}  # nothing to cancel there
    assert sum(task.cost_actual for task in tasks) == money(billed(fake)) <= CAP
    assert committed_spend(tasks) + ESTIMATE > CAP  # the refusals were right


@pytest.mark.worker
def test_a_key_over_twenty_late_cancels_is_charged_what_the_platform_billed_and_its_budget_holds(
    platform, user, catalog, client, django_capture_on_commit_callbacks
):
    issued = issue_key(user, name="capped", budget=CAP)
    api = Api(client, issued.secret, django_capture_on_commit_callbacks)
    tasks = Task.objects.filter(api_key_id=issued.key.pk)
    refusals = []

    def submit(prompt):
        response = api.submit(prompt=prompt)
        if response.status_code == 402:
            refusals.append(response.json()["error"]["code"])
            return None
        assert response.status_code == 201, response.json()
        return response.json()["task_id"]

    def cancel(task_id):
        response = api.post(f"/api/v1/tasks/{task_id}/cancel")
        assert response.status_code == 200
        body = response.json()
        # The platform had finished it: the charge is its, and not known here yet (or already).
        assert body["status"] == "cancelled" and body["cost_actual"] in (None, float(CHARGE))

    accepted = cancel_in_the_download_window(platform, TRIES, submit, cancel, tasks)

    check_every_charge_stands(platform, tasks, accepted)
    assert refusals == ["budget_exceeded"] * (TRIES - accepted)
    body = api.get(f"/api/v1/tasks/{tasks.first().pk}").json()
    assert (body["status"], money(body["cost_actual"])) == ("cancelled", CHARGE)


@pytest.mark.worker
def test_a_demo_pass_over_twenty_late_cancels_is_charged_what_the_platform_billed_and_its_cap_holds(
    platform, user, catalog
):
    demo = create_pass(user, "Friday demo", [SEED], CAP, hours=1)
    guest = Client()
    enter_demo(guest, reverse("demo", args=[pass_token(demo)]))
    tasks = Task.objects.filter(demo_pass=demo)
    play = reverse("play", args=[SEED])
    refusals, panels = [], []

    def submit(prompt):
        response = guest.post(play, as_form_data(catalog[SEED], seed_input(prompt=prompt)))
        if response.status_code != 302:
            refusals.append(response.content.decode())
            return None
        return response["Location"].rstrip("/").rsplit("/", 1)[1]

    def cancel(task_id):
        panel = guest.post(reverse("task-cancel", args=[task_id]), headers={"HX-Request": "true"})
        panels.append((panel.status_code, panel.content.decode()))

    accepted = cancel_in_the_download_window(platform, TRIES, submit, cancel, tasks)

    check_every_charge_stands(platform, tasks, accepted)
    assert len(refusals) == TRIES - accepted
    assert all("would go over the demo pass&#x27;s budget" in html for html in refusals)
    # Right after the cancel the panel said what it knew, and kept polling while it did not know.
    for status, html in panels:
        assert "Nothing was charged" not in html
        if "It may have been billed before the cancel reached it" in html:
            assert status == 200 and 'hx-trigger="every 1s"' in html
        else:
            assert status == 286 and "its charge of $0.0987 stands" in html
    # Once known, the panel says what was charged and why, and stops polling.
    final = guest.get(reverse("task", args=[tasks.first().pk]), headers={"HX-Request": "true"})
    html = final.content.decode()
    assert final.status_code == 286
    assert (
        "Cancelled too late: the work was already done and billed, so its charge of $0.0987 stands." in html
    )
    assert "<dt>Charged</dt><dd>$0.0987</dd>" in html


# --- Charges nobody was left to record: the reaper asks the platform -------------------------------


@pytest.fixture
def on_fake(settings, fake, user):
    settings.PLAYGROUND_ENGINE = "mindvideo"
    settings.MINDVIDEO_BASE_URL = fake.base_url
    store_upstream_key(user, fake.key)
    return fake


def upstream_task_for(fake, task_id: str, plan: list[str]) -> str:
    """The platform's task for ours, submitted as the engine does; it moves through `plan`."""
    response = httpx.post(
        f"{fake.base_url}/api/v1/tasks",
        json={"model": SEED, "input": seed_input()},
        headers={"Authorization": f"Bearer {fake.key}", "Idempotency-Key": idempotency_key(task_id)},
    )
    upstream_id = response.json()["task_id"]
    fake.tasks[upstream_id]["plan"] = plan
    return upstream_id


def a_lease_later():
    return timezone.now() + timedelta(seconds=61)


def charge_events(task: Task) -> list[str]:
    return [m for m in task.events.values_list("message", flat=True) if "charge" in m]


@pytest.mark.parametrize(
    ("plan", "charge", "upstream_end", "said"),
    [
        (["processing"], 0, "cancelled", "nothing was charged."),
        (["succeeded"], CHARGE, "succeeded", "its charge of $0.0987 stands."),
    ],
    ids=["still-running-there", "finished-there"],
)
def test_a_task_cancelled_while_its_worker_was_gone_is_settled_by_the_reaper(
    api, queue_only, on_fake, plan, charge, upstream_end, said
):
    task_id = api.submit().json()["task_id"]
    upstream_id = upstream_task_for(on_fake, task_id, plan)
    # Started, submitted upstream, and then its worker vanished (nobody will see the cancel).
    lease = timezone.now() + timedelta(seconds=60)
    assert transition(task_id, Status.PROCESSING, attempts=1, lease_expires_at=lease, upstream_id=upstream_id)

    cancelled = api.post(f"/api/v1/tasks/{task_id}/cancel").json()

    assert (cancelled["status"], cancelled["cost_actual"]) == ("cancelled", None)  # not known yet
    tasks = Task.objects.filter(pk=task_id)
    assert committed_spend(tasks) == ESTIMATE  # counted at its estimate meanwhile
    assert reap_expired_tasks().settled == []  # its own run gets a lease to record the charge
    assert reap_expired_tasks(a_lease_later()).settled == [task_id]
    task = tasks.get()
    assert (task.status, task.cost_actual) == ("cancelled", charge)
    assert charge_events(task) == [f"Checked with MindVideo after the task ended: {said}"]
    assert on_fake.tasks[upstream_id]["status"] == upstream_end  # cancelled there if it still ran
    assert reap_expired_tasks(a_lease_later()).settled == []  # settled once


def test_a_task_whose_worker_died_while_upstream_had_it_fails_with_its_charge_unknown_then_settled(
    api, on_fake, settings
):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.PLAYGROUND_TASK_MAX_ATTEMPTS = 1
    task_id = api.submit().json()["task_id"]
    started_by_dead_worker(task_id)
    Task.objects.filter(pk=task_id).update(upstream_id=upstream_task_for(on_fake, task_id, ["succeeded"]))

    assert reap_expired_tasks().failed == [task_id]
    task = Task.objects.get(pk=task_id)
    assert (task.status, task.cost_actual) == ("failed", None)
    assert task.error["message"] == (
        "The worker running this task stopped; it was retried 0 times. "
        "What the platform charged for its work is recorded once it is known."
    )
    assert reap_expired_tasks(a_lease_later()).settled == [task_id]
    assert Task.objects.get(pk=task_id).cost_actual == CHARGE


def test_a_mindvideo_task_cancelled_before_it_ran_costs_nothing(api, queue_only, on_fake):
    task_id = api.submit().json()["task_id"]

    cancelled = api.post(f"/api/v1/tasks/{task_id}/cancel").json()

    assert (cancelled["status"], cancelled["cost_actual"]) == ("cancelled", 0)
    assert reap_expired_tasks(a_lease_later()).settled == []
    assert on_fake.requests == []
