"""Every caller sees exactly its own scope on every task URL.

- A signed-in person sees every task they own: their own and their demo guests' (a task made on a
  pass is owned by the pass's owner).
- A guest on a demo pass sees only the tasks made on that pass under their own guest id.
- An API key sees the tasks of the key's user, however they were made.

Anything outside the scope is exactly as missing as a task that never existed: 404 (not 403), and
touching it changes nothing. The htmx status poll is the one different answer: it must stop rather
than poll a 404 forever, so it gets the "no longer available" panel with 286, and nothing of the
task. Output files without a signed token follow the same scope (a session or a key); input files
are an account's: a guest, who owns none, reaches even the ones their tasks use only through the
signed links their pages give them.

The world of every test: Alice, with a demo pass that guests one and two entered; Bob, with an API
key; a task each (Bob one from the browser and one with his key), each with an input image of its
own. Each row is one (caller, URL, task).
"""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import reverse

from playground.access.callers import GUEST_SESSION_KEY
from playground.access.passes import create_pass, pass_token
from playground.generations.inputs import parse_reference
from playground.generations.models import Status, Task
from playground.generations.services import submit_task
from playground.keys.services import issue_key
from playground.web.views import TASK_GONE

from .helpers import SEED, data_uri, enter_demo, seed_input, solid_png

ALICE, GUEST, BOBS_KEY = "signed-in-alice", "guest-one", "bobs-key"

# Each task's prompt and input image: distinct bytes, as one owner's same bytes are one input file.
TASKS = {
    "alices-task": ("Alice's fox", (200, 0, 0)),
    "guest-ones-task": ("guest one's owl", (0, 200, 0)),
    "guest-twos-task": ("guest two's hare", (0, 0, 200)),
    "bobs-task": ("Bob's heron", (200, 200, 0)),
    "bobs-api-task": ("Bob's badger by API", (0, 200, 200)),
}

SCOPE = {
    ALICE: {"alices-task", "guest-ones-task", "guest-twos-task"},
    GUEST: {"guest-ones-task"},
    BOBS_KEY: {"bobs-task", "bobs-api-task"},
}


@dataclass
class World:
    callers: dict[str, Client]
    tasks: dict[str, Task]


def build_world(django_user_model, capture, *, run: bool) -> World:
    """The callers and the tasks; with `run` every task has run to success, else all are queued."""
    alice = django_user_model.objects.create_user("alice", password="alice-password-1")
    bob = django_user_model.objects.create_user("bob", password="bob-password-1")
    bobs_key = issue_key(bob, name="bob's key")
    demo_pass = create_pass(alice, "Team demo", [SEED], spend_cap=5, hours=2)
    guests = [Client(), Client()]
    for guest in guests:
        enter_demo(guest, reverse("demo", args=[pass_token(demo_pass)]))
    signed_in = Client()
    signed_in.force_login(alice)

    def on_pass(guest: Client) -> dict:
        return {"source": "demo", "demo_pass": demo_pass, "guest": guest.session[GUEST_SESSION_KEY]}

    made_by = {
        "alices-task": (alice, {"source": "web"}),
        "guest-ones-task": (alice, on_pass(guests[0])),
        "guest-twos-task": (alice, on_pass(guests[1])),
        "bobs-task": (bob, {"source": "web"}),
        "bobs-api-task": (bob, {"source": "api", "api_key": bobs_key.key}),
    }
    tasks = {}
    for name, (prompt, colour) in TASKS.items():
        owner, how = made_by[name]
        data = seed_input(prompt=prompt, image_urls=[data_uri(solid_png(colour, (64, 64)))])
        with capture(execute=run):
            task = submit_task(owner, SEED, data, request_id=f"req_{name}", **how).task
        tasks[name] = Task.objects.get(pk=task.pk)
        assert tasks[name].status == (Status.SUCCEEDED if run else Status.QUEUED)
    callers = {
        ALICE: signed_in,
        GUEST: guests[0],
        BOBS_KEY: Client(headers={"Authorization": f"Bearer {bobs_key.secret}"}),
    }
    return World(callers, tasks)


@pytest.fixture
def finished(django_user_model, catalog, django_capture_on_commit_callbacks):
    return build_world(django_user_model, django_capture_on_commit_callbacks, run=True)


@pytest.fixture
def queued(django_user_model, catalog, django_capture_on_commit_callbacks):
    return build_world(django_user_model, django_capture_on_commit_callbacks, run=False)


# --- Reading: pages, panels, downloads, files, the API ------------------------------------------------


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def output_file(task: Task) -> str:
    name = task.output[task.model.output_key][0]["file"].rsplit("/", 1)[-1]
    return reverse("task-file", args=[task.pk, name])


def input_file(task: Task) -> str:
    reference = parse_reference(task.input["image_urls"][0])
    return reverse("input-file", args=[reference.id, reference.name])


@dataclass(frozen=True)
class Read:
    """A URL read about one task: what its owner gets (status, and `shows` true of the answer), and
    what anyone else gets (`refused`, and `shows` false)."""

    callers: tuple[str, ...]
    get: Callable[[Client, Task], object]
    status: int
    shows: Callable[[bytes, Task], bool]
    refused: int = 404
    refusal: str = ""  # said in the refusal, if anything
    for_accounts_only: bool = False  # a guest's scope here is empty (see the module docstring)

    def scope(self, caller: str) -> set[str]:
        return set() if self.for_accounts_only and caller == GUEST else SCOPE[caller]


def prompt_shown(content: bytes, task: Task) -> bool:
    return task.input["prompt"].replace("'", "&#x27;").encode() in content


def png(content: bytes, task: Task) -> bool:
    return content.startswith(b"\x89PNG")


def api_task(content: bytes, task: Task) -> bool:
    return f'"task_id": "{task.pk}"'.encode() in content


WEB, ANYONE = (ALICE, GUEST), (ALICE, GUEST, BOBS_KEY)
READS = {
    "task-page": Read(WEB, lambda c, t: c.get(reverse("task", args=[t.pk])), 200, prompt_shown),
    "status-panel": Read(
        WEB,
        lambda c, t: c.get(reverse("task", args=[t.pk]), headers={"HX-Request": "true"}),
        286,  # a settled task's panel stops the polling
        lambda content, t: f'data-task="{t.pk}"'.encode() in content,
        refused=286,
        refusal=TASK_GONE,
    ),
    "thumbnail": Read(
        WEB,
        lambda c, t: c.get(reverse("task-thumb", args=[t.pk])),
        286,  # an ended task's item stops polling
        lambda content, t: f'id="strip-{t.pk}"'.encode() in content,
    ),
    "zip": Read(
        WEB,
        lambda c, t: c.get(reverse("task-zip", args=[t.pk])),
        200,
        lambda content, t: content.startswith(b"PK") and f"{t.pk}-".encode() in content,
    ),
    "re-run-prefill": Read(
        WEB, lambda c, t: c.get(reverse("play", args=[SEED]), {"from": t.pk}), 200, prompt_shown
    ),
    "output-file": Read(ANYONE, lambda c, t: c.get(output_file(t)), 200, png),
    "input-file": Read(ANYONE, lambda c, t: c.get(input_file(t)), 200, png, for_accounts_only=True),
    "api-task": Read(
        (BOBS_KEY,),
        lambda c, t: c.get(reverse("api-task", args=[t.pk])),
        200,
        api_task,
        refusal="task_not_found",  # as for a task that never existed
    ),
    "api-events": Read(
        (BOBS_KEY,),
        lambda c, t: c.get(reverse("api-task-events", args=[t.pk])),
        200,
        lambda content, t: b'"status": "queued"' in content,  # every task's first event
        refusal="task_not_found",
    ),
}


def read_rows():
    for route, read in READS.items():
        for caller in read.callers:
            for task in TASKS:
                mine = task in read.scope(caller)
                answer = "sees-it" if mine else f"gets-{read.refused}"
                yield pytest.param(caller, route, task, id=f"{caller}-{route}-{task}-{answer}")


@pytest.mark.parametrize(("caller", "route", "task"), list(read_rows()))
def test_a_caller_reads_only_their_own_tasks(finished, caller, route, task):
    read, target = READS[route], finished.tasks[task]
    response = read.get(finished.callers[caller], target)
    content = body(response)
    if task in read.scope(caller):
        assert response.status_code == read.status, content[:300]
        assert read.shows(content, target)
    else:
        assert response.status_code == read.refused, content[:300]
        assert not read.shows(content, target)
        assert target.input["prompt"].encode() not in content
        assert read.refusal.encode() in content


# --- Cancelling ---------------------------------------------------------------------------------------

CANCELS = {
    "cancel": (WEB, lambda c, t: c.post(reverse("task-cancel", args=[t.pk])), 302),
    "api-cancel": ((BOBS_KEY,), lambda c, t: c.post(reverse("api-task-cancel", args=[t.pk])), 200),
}


def cancel_rows():
    for route, (callers, _, _) in CANCELS.items():
        for caller in callers:
            for task in TASKS:
                answer = "cancels-it" if task in SCOPE[caller] else "gets-404-and-it-stays-queued"
                yield pytest.param(caller, route, task, id=f"{caller}-{route}-{task}-{answer}")


@pytest.mark.parametrize(("caller", "route", "task"), list(cancel_rows()))
def test_a_caller_cancels_only_their_own_tasks(queued, caller, route, task):
    _, post, status = CANCELS[route]
    target = queued.tasks[task]
    response = post(queued.callers[caller], target)
    target.refresh_from_db()
    if task in SCOPE[caller]:
        assert response.status_code == status, response.content[:300]
        assert target.status == Status.CANCELLED
    else:
        assert response.status_code == 404, response.content[:300]
        assert target.status == Status.QUEUED
        assert not Task.objects.filter(status=Status.CANCELLED).exists()


# --- Listing ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "task",
    [
        pytest.param(
            task,
            id=f"{BOBS_KEY}-api-list-{task}-{'lists-it' if task in SCOPE[BOBS_KEY] else 'leaves-it-out'}",
        )
        for task in TASKS
    ],
)
def test_a_key_lists_only_its_users_tasks(finished, task):
    response = finished.callers[BOBS_KEY].get(reverse("api-tasks"), {"limit": 100})
    assert response.status_code == 200
    listed = {item["task_id"] for item in response.json()["data"]}
    assert (finished.tasks[task].pk in listed) == (task in SCOPE[BOBS_KEY])


def test_a_guest_sending_a_stale_bearer_key_still_reads_their_own_files_and_no_one_elses(finished):
    """A key that is not valid is no caller of its own: the session behind it still counts (a
    guest's browser extension or proxy adding an old Authorization header must not cost them
    their results), and it reaches no more than the session does."""
    guest = finished.callers[GUEST]
    stale = {"Authorization": "Bearer pg_live_" + "x" * 38}
    mine, theirs = finished.tasks["guest-ones-task"], finished.tasks["guest-twos-task"]
    answer = guest.get(output_file(mine), headers=stale)
    assert answer.status_code == 200 and png(body(answer), mine)
    assert guest.get(output_file(theirs), headers=stale).status_code == 404
    assert Client().get(output_file(mine), headers=stale).status_code == 404
