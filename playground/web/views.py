"""The browser playground: pages and htmx partials over the same services as the API.

Function views render the full page for a normal request and only the named partial for an htmx
request (`"web/playground.html#task-status"`). Every `hx-get` is also a real link, so the pages
work without JavaScript (plain form posts and a meta refresh).
"""

import json
import secrets
from contextlib import suppress
from datetime import timedelta
from functools import partial, wraps
from urllib.parse import quote, urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, redirect_to_login
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from zipstream import ZipStream

from playground.access.callers import (
    SIGNED_OUT,
    AccessEnded,
    Caller,
    confirm_session,
    current_pass_id,
    enter_pass,
    session_caller,
)
from playground.access.passes import PassRefused, pass_for_token
from playground.access.signin import SignInForm
from playground.catalog.models import CatalogEntry
from playground.catalog.pricing import estimate_cost
from playground.catalog.schema_forms import SchemaForm, field_specs, form_for_input
from playground.generations.batches import batch_request_hash, submit_batch
from playground.generations.fairness import place_in_line
from playground.generations.inputs import shared_input
from playground.generations.jobs import worker_is_silent
from playground.generations.models import InputText, Share, Status, Task, TaskEvent
from playground.generations.outputs import output_url, public_base
from playground.generations.presenters import (
    conditional_response,
    not_modified,
    panel_etag,
    percent,
    shown_progress,
    task_stamp,
)
from playground.generations.services import (
    SubmitError,
    TaskConflict,
    cancel_task,
    check_input,
    engine_for,
    request_hash,
    submit_task,
)
from playground.generations.sharing import NotShareable, share_task, share_url, unshare_task
from playground.keys.credentials import has_working_upstream_key
from playground.keys.models import DemoPass
from playground.teams.services import team_members

from .batch_form import ALSO_RUN_ON, BatchChoice, batch_choice, batch_estimate, offered_models, vary_controls
from .batch_form import limits as batch_limits
from .batch_grid import batch_grid_context
from .forms import FirstAccountForm, SignUpForm
from .join import pass_link
from .snippets import api_snippets

# What presentation mode keeps through its links (`present_views`): the chosen models, the pass whose
# QR code shows, whether its audience's results show.
PRESENT_KEPT = ("models", "pass", "audience")

VISIT_SESSION_KEY = "visit_tasks"
VISIT_STRIP_SIZE = 24

HTMX_STOP_POLLING = 286
HISTORY_PAGE_SIZE = 25
TASK_GONE = "This task is no longer available to you."
SHARING_NOT_ALLOWED = "This demo pass does not allow sharing results."


def form_input(caller: Caller, entry: CatalogEntry, task: Task):
    """A task's input (one in the caller's scope) as their form carries it again for `entry`.
    Input files are owned per account: a guest owns none (their files are the pass owner's, see
    `inputs.resolve_reference`), and a teammate does not own the files of the member who ran the
    task. Their form holds signed references to the files of the task's own author that it uses
    (`shared_input` signs no one else's), so the re-run gets a copy of its own."""
    if not caller.is_guest and task.owner_id == caller.owner_id:
        return task.input
    return shared_input(entry, task.input, "", task.owner_id)


# The pages that show a workspace's things (and only those): where a person lands after their
# workspace changed. Any other page (one task, a form's answer) belongs to the workspace left.
WORKSPACE_PAGES = ("/history", "/usage", "/keys", "/team", "/teams", "/play/", "/present")


def landing_page(path: str) -> str:
    """Where to go on from `path` (a local path) in another workspace: the same page if it is one
    of a workspace's pages, without its filters (a member filter means nothing elsewhere); the team
    page for a team form's answer; else the playground."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    if path.startswith("/team/"):
        return reverse("team")
    if path.startswith(WORKSPACE_PAGES) and url_has_allowed_host_and_scheme(path, None):
        return path
    return reverse("home")


def access_ended(
    request: HttpRequest, message: str, *, status: int = 403, sign_in: bool = False, retry: bool = False
):
    """The answer when a visitor may no longer see what they asked for (signed out, pass revoked
    or expired, task out of reach). For htmx it replaces the result panel with the reason and
    answers 286, so a polling panel stops instead of swapping in a sign-in page or polling on."""
    context = {"message": message, "sign_in": sign_in, "next": _current_path(request)}
    if request.htmx:
        response = render(request, "web/playground.html#access-ended", context, status=HTMX_STOP_POLLING)
        response["HX-Retarget"] = "#task-status"
        response["HX-Reswap"] = "outerHTML"
        response["HX-Reselect"] = "#task-status"  # the model picker's request selects `.play`
        return response
    if sign_in:
        return redirect_to_login(request.get_full_path())
    if retry and request.method == "GET":  # the session moved on: the page, as it is there now
        messages.warning(request, message)
        return redirect(landing_page(request.get_full_path()))
    if current_pass_id(request) is None:  # a signed-in person: a team's door, not a demo's
        context.update(heading="Not available", hint="")
    return render(request, "web/demo_refused.html", context, status=status)


def _current_path(request: HttpRequest) -> str:
    """Where the person is: the page an htmx request came from, else this request's path."""
    current = request.htmx.current_url_abs_path if request.htmx else None
    return current or request.get_full_path()


def visitor_required(view=None, *, lean: bool = False):
    """Signed-in people and guests holding a valid demo pass (`access.callers.session_caller`):
    the view sees `request.caller`. A revoked or expired pass, or a session that ended, ends the
    visit cleanly (see `access_ended`). `lean`: the view confirms the session itself, against the
    account row it loads with the task (the status poll)."""

    def decorate(view):
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                request.caller = session_caller(request, lean=lean)
            except AccessEnded as exc:
                return access_ended(request, exc.message, sign_in=exc.sign_in, retry=exc.retry)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


def person_required(view):
    """Signed-in people only (no guests), in the workspace their session names: the view sees
    `request.caller`, whose scope is that workspace's. A person removed from the team they were
    working in is told so and is back in their personal workspace."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            request.caller = session_caller(request)
        except AccessEnded as exc:
            return access_ended(request, exc.message, sign_in=exc.sign_in, retry=exc.retry)
        return view(request, *args, **kwargs)

    return wrapper


def _entries(request: HttpRequest):
    entries = request.caller.entries()
    return list(entries.only("slug", "title", "kind").order_by("kind", "title"))


def _default_entry(request: HttpRequest) -> CatalogEntry | None:
    entries = request.caller.entries()
    return (
        entries.filter(slug="gemini-3-pro-image-preview-official").first()
        or entries.order_by("kind", "title").first()
    )


def _visible_entry(request: HttpRequest, slug: str) -> CatalogEntry:
    entry = CatalogEntry.objects.filter(slug=slug, is_active=True).first()
    if entry is None or not request.caller.allows(entry):
        raise Http404("No such model.")
    return entry


# What the status panel shows (and its ETag covers), loaded with each event: every event's row
# repeats its task and model, so the task's input and the model's schema are left behind.
PANEL_FIELDS = (
    *("task", "created_at", "kind", "status", "message"),
    *(
        f"task__{name}"
        for name in (
            *("owner", "team", "demo_pass", "guest", "model", "status", "cost_estimate", "cost_actual"),
            *("output", "error", "created_at", "updated_at", "started_at", "finished_at", "lease_expires_at"),
            "progress",
        )
    ),
    *(f"task__model__{name}" for name in ("slug", "title", "kind", "output_key", "updated_at")),
    *(f"task__share__{name}" for name in ("token", "show_parameters", "created_at")),
    "task__owner__username",  # a team's task says who ran it
)


# What `confirm_session` reads of the account, loaded with the task for a lean caller.
OWNER_CHECK = ("task__owner__password", "task__owner__is_active")


def owned_task_with_events(request: HttpRequest, task_id: str) -> tuple[Task, list[TaskEvent]]:
    """The caller's task and its events in one query (every task has its `queued` event). Anyone
    else's task is a 404. Only what the status panel shows is loaded (PANEL_FIELDS).

    For a lean caller (the status poll) the query also brings the account's row, against which
    the session is checked here (`confirm_session`, AccessEnded when it fails), so a signed-in
    poll costs two queries: the session and this."""
    caller = request.caller
    events = TaskEvent.objects.filter(caller.task_scope("task__"), task_id=task_id).order_by("id")
    events = events.select_related("task__model", "task__share", "task__owner")
    events = list(
        events.only(*PANEL_FIELDS) if caller.confirmed else events.only(*PANEL_FIELDS, *OWNER_CHECK)
    )
    if not events:
        if not caller.confirmed and not request.user.is_authenticated:
            raise AccessEnded(SIGNED_OUT, sign_in=True)
        raise Http404("No such task.")
    task = events[0].task
    if not caller.confirmed:
        confirm_session(request, caller, task.owner)
    return task, events


def _elapsed(task: Task) -> timedelta:
    """Since the task was submitted: what the person has waited, the same across a retry (which
    starts the task again) and counting its time in line."""
    return (task.finished_at or timezone.now()) - task.created_at


def _outputs(request: HttpRequest, task: Task) -> list[dict]:
    if task.status != Status.SUCCEEDED or not task.output:
        return []
    items = task.output.get(task.model.output_key, [])
    # "Download" asks for an attachment: with presigned URLs the file comes from the bucket's
    # origin, where the link's `download` attribute no longer applies.
    outputs = []
    for item in items:
        url = output_url(request, task.pk, item["file"])
        name = item["file"].rsplit("/", 1)[-1]
        outputs.append({**item, "url": url, "download_url": f"{url}&download", "name": name})
    return outputs


def present_flags(request: HttpRequest) -> dict:
    """For presentation mode's pages and the partials they poll (`?present`): `present`, which
    leaves money and the page's chrome out, and `present_query` (`&models=…`), which its links keep."""
    page = request.resolver_match.url_name if request.resolver_match else ""
    if "present" not in request.GET and page not in ("present", "present-model"):
        return {"present": False, "present_query": ""}
    kept = {name: request.GET[name] for name in PRESENT_KEPT if request.GET.get(name)}
    return {"present": True, "present_query": ("&" + urlencode(kept)) if kept else ""}


def _status_context(request: HttpRequest, task: Task, events: list[TaskEvent]) -> dict:
    elapsed = _elapsed(task)
    # A queued task's place in line moves while its row stays the same: it is part of the ETag.
    place = place_in_line(task.pk, task.created_at) if task.status == Status.QUEUED else None
    in_line = place.sentence(guest=task.demo_pass_id is not None) if place else ""
    silent = worker_is_silent(task.status, task.lease_expires_at)
    progress = shown_progress(task.status, task.progress)
    return {
        **present_flags(request),
        "caller": request.caller,
        "task": task,
        "events": events,
        "elapsed": elapsed,
        "elapsed_seconds": f"{elapsed.total_seconds():.1f}",  # app.js ticks it on between polls
        "outputs": _outputs(request, task),
        **_share_context(request, task, _loaded_share(task)),
        "in_line": in_line,
        "progress": progress,
        "progress_percent": percent(progress),
        "worker_silent": silent,
        # A running task's panel carries its ETag, so app.js can tell an unchanged poll (see
        # _status_panel); a settled task's panel is never polled again.
        "etag": ""
        if task.is_settled
        else panel_etag(
            request,
            task.pk,
            task.status,
            task.updated_at,
            events[-1].pk,
            task.model.updated_at,
            task.progress,
            place,
            silent,
        ),
    }


def _loaded_share(task: Task) -> Share | None:
    """The task's share, loaded with the panel's query (PANEL_FIELDS)."""
    try:
        return task.share
    except Share.DoesNotExist:
        return None


def _share_context(request: HttpRequest, task: Task, share: Share | None, *, error: str = "") -> dict:
    """What the panel's Share box shows: nothing unless the task succeeded and the caller may
    share; then its page's URL if it is shared, else the Share button."""
    if task.status != Status.SUCCEEDED:
        return {"shareable": False}
    return {
        # A page shared once stays reachable to unshare, even if the pass stops allowing it.
        "shareable": share is not None or request.caller.may_share(),
        "share": share,
        "share_link": share_url(request, share) if share else "",
        "share_error": error,
    }


def _unchanged_panel(request: HttpRequest, task_id: str) -> HttpResponse | None:
    """A poll whose If-None-Match names the panel as it still is: 304 from one raw statement
    (`task_stamp`), and for a queued task a second that counts its place in line, nothing else
    loaded; None for the full panel. A settled task's panel is never unchanged (it ends with the
    whole panel), and the session is checked on the account the statement brought."""
    if not request.headers.get("If-None-Match"):
        return None
    stamp = task_stamp(task_id, request.caller.scope_fields())
    if stamp is None or stamp.settled:
        return None
    if not request.caller.confirmed:
        confirm_session(request, request.caller, stamp.owner)
    place = place_in_line(task_id, stamp.created_at) if stamp.status == Status.QUEUED else None
    silent = worker_is_silent(stamp.status, stamp.lease_expires_at)
    etag = panel_etag(
        request,
        task_id,
        stamp.status,
        stamp.updated_at,
        stamp.last_event_id,
        stamp.model_updated_at,
        stamp.progress,
        place,
        silent,
    )
    response = not_modified(request, etag)
    if response is not None:
        patch_vary_headers(response, ("HX-Request",))
    return response


def _status_panel(request: HttpRequest, task: Task, events: list[TaskEvent]) -> HttpResponse:
    """The status panel for an htmx poll.

    A settled task (ended, its charge known) answers 286 (htmx stops polling) with the final panel,
    never a 304, so the last poll always shows the end; one that ended before its charge was known
    (cancelled while an upstream platform had it) is polled on until it is. Any other panel has an
    ETag (the task row, its newest event, the model's title): a poll that finds nothing new gets 304
    and nothing is rendered. The browser sends If-None-Match by itself and hands htmx its cached
    copy; app.js then keeps the panel on screen, whose elapsed time it ticks on, rather than swap in
    that older copy.
    """
    context = _status_context(request, task, events)
    if task.is_settled:
        response = render(request, "web/playground.html#task-status", context, status=HTMX_STOP_POLLING)
    else:
        response = conditional_response(
            request, context["etag"], lambda: render(request, "web/playground.html#task-status", context)
        )
    patch_vary_headers(response, ("HX-Request",))  # the same URL is the full page without htmx
    return response


# --- The results of this visit: a strip of the tasks made in this browser session -------------------


def _remember_in_visit(request: HttpRequest, task_id: str) -> None:
    visit = request.session.get(VISIT_SESSION_KEY, [])
    ids = [task_id, *(i for i in visit if i != task_id)][:VISIT_STRIP_SIZE]
    if ids != visit:  # a replayed submit's task heads the strip already: the session is not written
        request.session[VISIT_SESSION_KEY] = ids


def _strip_item(request: HttpRequest, task: Task) -> dict:
    return {"task": task, "thumb": next(iter(_outputs(request, task)), None)}


def _visit_strip(request: HttpRequest) -> list[dict]:
    """This visit's tasks, newest first, as far as the visitor may still see them."""
    ids = request.session.get(VISIT_SESSION_KEY, [])
    if not ids:
        return []
    tasks = (
        Task.objects.filter(request.caller.task_scope(), pk__in=ids)
        .select_related("model")
        .defer("input", "model__input_schema", "model__example_input")
        .annotate(prompt=InputText("prompt"))
    )
    order = {task_id: index for index, task_id in enumerate(ids)}
    return [_strip_item(request, task) for task in sorted(tasks, key=lambda t: order[t.pk])]


def _playground_context(
    request: HttpRequest,
    entry: CatalogEntry,
    form: SchemaForm,
    *,
    entries: list | None = None,
    batches: bool = True,
    **extra,
) -> dict:
    """What the playground's page shows; `entries`: the model picker's models (default: every model
    the caller may run); `batches`: with the Vary and Also run on controls (`batch_form`)."""
    engine = engine_for(entry)
    estimate = {"estimate": _safe_estimate(entry, form.pricing_input())}
    if batches:
        estimate = _batch_controls(request, entry, form)
    return {
        "entries": _entries(request) if entries is None else entries,
        "entry": entry,
        "form": form,
        "engine": engine,
        "upstream_warning": engine == "mindvideo"
        and not has_working_upstream_key(request.caller.owner_id, request.caller.team_id),
        **estimate,
        "form_token": secrets.token_urlsafe(16),
        "visit": _visit_strip(request),
        "nav": "play",
        **extra,
    }


def _batch_controls(request: HttpRequest, entry: CatalogEntry, form: SchemaForm) -> dict:
    """The form's Vary controls (set beside their fields), Also run on's models, and the Generate
    button's estimate: the batch's when the controls ask for more than one run."""
    data = form.data if form.is_bound else None
    form.beside = vary_controls(form, data, [])
    ticked = data.getlist(ALSO_RUN_ON) if data is not None else []
    models = offered_models(entry, request.caller.entries())
    context = {
        "also_run_on": [{"entry": m, "checked": m.slug in ticked} for m in models],
        "also_open": bool(ticked),
        **batch_limits(),
    }
    return {**context, **_estimate_context(request, entry, form, data)}


def _estimate_context(request: HttpRequest, entry: CatalogEntry, form: SchemaForm, data) -> dict:
    """`estimate` (one task's, or the whole batch's) and `runs` (how many tasks Generate makes)."""
    choice = batch_choice(form, data, request.caller.entries()) if data is not None else None
    if choice is None or not choice.wanted:
        return {"estimate": _safe_estimate(entry, form.pricing_input()), "runs": 1, **batch_limits()}
    estimate = None if choice.errors else batch_estimate(form, choice)
    return {"estimate": estimate, "runs": choice.runs, **batch_limits()}


def _safe_estimate(entry: CatalogEntry, data: dict | None):
    """What the Generate button says: the price of `data`, or None (shown as "—") when it has
    none: a value the model refuses (`pricing_input` gave None), or a cost no task is charged
    (`NoPrice`: below zero or absurd)."""
    if data is None:
        return None
    try:
        return estimate_cost(entry, data)
    except (TypeError, ValueError, ArithmeticError):  # NoPrice is a ValueError
        return None


def first_account_needed() -> bool:
    return not get_user_model().objects.exists()


@visitor_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    entry = _default_entry(request)
    if entry is None:
        return render(request, "web/empty_catalog.html")
    return redirect("play", slug=entry.slug)


@visitor_required
@require_http_methods(["GET", "POST"])
def play(request: HttpRequest, slug: str) -> HttpResponse:
    entry = _visible_entry(request, slug)
    if request.method == "POST":
        return _submit(request, entry, batches=True)
    source = None
    if request.GET.get("from"):
        source = Task.objects.filter(request.caller.task_scope(), pk=request.GET["from"]).first()
        if source is None:
            raise Http404("No such task.")
        form, problems = form_for_input(entry, form_input(request.caller, entry, source), source=source.model)
        context = _playground_context(request, entry, form, rerun_of=source, carry_problems=problems)
    else:
        context = _playground_context(request, entry, SchemaForm(entry))
        # The panel shows this visit's latest result for this model (the strip has the others);
        # the rest of one's work is in History, and a guest's on the pass is not one's own.
        latest = next((item["task"] for item in context["visit"] if item["task"].model_id == entry.pk), None)
        if latest is not None:
            task, events = owned_task_with_events(request, latest.pk)
            context.update(_status_context(request, task, events))
    return render(request, "web/playground.html", context)


WORKSPACE_SWITCHED = (
    "You switched workspace (in another tab) since this form was shown, so nothing was run. You are "
    "now in {workspace}: press Generate again to run it there, or switch back first."
)


def _submit(
    request: HttpRequest,
    entry: CatalogEntry,
    *,
    page: str = "web/playground.html",
    context=_playground_context,
    task_url=None,
    batches: bool = False,
) -> HttpResponse:
    """The run form's submit, for every page that has one (the playground, presentation mode).
    `page` is the template holding the page's `run-form` and `submitted` partials, `context` builds
    its context for a form sent back with errors, and `task_url(task)` is where a task made goes:
    the address pushed for htmx (None: the address stays), the page redirected to without it (default:
    the task's own page)."""
    # The form says which workspace it was shown in (its hidden `workspace`): a submit after the
    # session switched in another tab must not run, and be paid for and seen, somewhere else.
    shown_in = request.POST.get("workspace")
    current = request.caller.team_id
    if shown_in is not None and shown_in != ("" if current is None else str(current)):
        form = SchemaForm(entry, request.POST)
        form.is_valid()  # the form as it was, to show again (its files are chosen again anyway)
        workspace = request.caller.team.name if request.caller.team else "your personal workspace"
        form.add_error(None, WORKSPACE_SWITCHED.format(workspace=workspace))
        return _form_again(request, entry, form, page=page, context=context, status=409)
    form = SchemaForm(entry, request.POST, request.FILES, check=check_input)
    choice = batch_choice(form, request.POST, request.caller.entries()) if batches else None
    if choice is not None and choice.wanted:
        return _submit_batch(request, entry, form, choice, page=page, context=context)
    if form.is_valid():
        try:
            submission = _submit_form(request, entry, form)
        except SubmitError as exc:
            for error in exc.errors or []:
                form.add_error(form.field_for_error(error), error.message)
            if not exc.errors:
                form.add_error(None, exc.message)
        else:
            task = submission.task
            _remember_in_visit(request, task.pk)
            url = task_url(task) if task_url else reverse("task", args=[task.pk])
            if not request.htmx:
                return redirect(url)
            pushed = url if task_url is None else None
            return _submitted(request, entry, task, pushed, created=submission.created, page=page)
    return _form_again(request, entry, form, page=page, context=context, status=422)


def _form_again(
    request: HttpRequest, entry: CatalogEntry, form: SchemaForm, *, page: str, context, status: int
) -> HttpResponse:
    """The run form again with what was wrong: for htmx in place of the form (200, which htmx
    swaps), else the page with `status`."""
    page_context = context(request, entry, form)
    if request.htmx:
        response = render(request, f"{page}#run-form", page_context)
        response["HX-Retarget"] = "#run-form"
        response["HX-Reswap"] = "outerHTML"
        return response
    return render(request, page, page_context, status=status)


def _submit_form(request: HttpRequest, entry: CatalogEntry, form: SchemaForm):
    """Submit the form's input as a task (`_once_per_form`)."""
    submit = partial(
        submit_task,
        request.caller.owner,
        entry,  # found and checked by the view already: no second read of its row
        form.input_data,
        **_submitted_by(request),
    )
    return _once_per_form(request, submit, lambda: request_hash(entry.slug, form.input_data))


def _submitted_by(request: HttpRequest) -> dict:
    """Who a browser submit (a task or a batch) is made by, as the services take it: the caller's
    pass and guest id, workspace, source, and the origin its input files are referenced under."""
    caller = request.caller
    return {
        "request_id": request.request_id,
        "source": "demo" if caller.is_guest else "web",
        "demo_pass": caller.demo_pass,
        "guest": caller.guest,
        "base_url": public_base(request),
        "team_id": caller.team_id,
    }


def _once_per_form(request: HttpRequest, submit, fingerprint):
    """`submit()` with the form's one-time token as its Idempotency-Key, so a double click or a
    resent POST replays what it made instead of paying twice. A token already spent on a
    different input (`fingerprint()`, the request's hash) means the person changed the form and
    pressed again: that is a new submission, never an error about keys they cannot see."""
    caller = request.caller
    token = request.POST.get("form_token", "")
    if not 8 <= len(token) <= 64:
        return submit()
    # Guests on one pass share its owner, whose keys these are: each guest's tokens are their own.
    key = f"web:{caller.guest}:{token}" if caller.guest else f"web:{token}"
    try:
        return submit(idempotency_key=key)
    except SubmitError as exc:
        if exc.code != "idempotency_key_reused":
            raise
    # The token was spent on another input: this is a new press, and the same one resent replays.
    return submit(idempotency_key=f"{key}:{fingerprint()[:16]}")


def _submit_batch(
    request: HttpRequest, entry: CatalogEntry, form: SchemaForm, choice: BatchChoice, *, page: str, context
) -> HttpResponse:
    """The run form with Vary values or other models chosen: a batch (`batches.submit_batch`, as
    the API's), all or none. Its grid takes the result panel's place (htmx) or is the next page."""
    valid = form.is_valid()
    for name, message in choice.errors.items():
        form.add_error(name, message)
    if valid and not choice.errors:
        body = choice.body(entry, form.input_data)
        submit = partial(submit_batch, request.caller.owner, body, **_submitted_by(request))
        try:
            submission = _once_per_form(request, submit, lambda: batch_request_hash(body))
        except SubmitError as exc:
            for error in exc.errors or []:
                form.add_error(*_batch_error(form, error, choice))
            if not exc.errors:
                form.add_error(None, exc.message)
        else:
            batch = submission.batch
            url = reverse("batch", args=[batch.pk])
            if not request.htmx:
                return redirect(url)
            response = render(
                request,
                "web/batch.html#batch-submitted",
                {
                    **batch_grid_context(request, batch),
                    "entry": entry,
                    "form_token": secrets.token_urlsafe(16),
                    "estimate": batch.cost_estimate,
                    "runs": len(batch.task_ids),
                },
            )
            response["HX-Push-Url"] = url
            response["HX-Trigger-After-Settle"] = json.dumps({"playground:submitted": {"batch": batch.pk}})
            return response
    return _form_again(request, entry, form, page=page, context=context, status=422)


def _batch_error(form: SchemaForm, error, choice: BatchChoice) -> tuple[str | None, str]:
    """Where a refusal of a batch goes on the form, and what it says there: a varied value's
    (`vary.size[2]`) beside its field, naming the value; another model's (`models[1]`) above."""
    field = error.field
    if field.startswith("vary."):
        name, _, rest = field.removeprefix("vary.").partition("[")
        spec = next((s for s in form.specs if s.name == name), None)
        if spec is None:
            return None, error.message
        index = rest.split("]")[0]
        value = choice.vary.get(name, [])[int(index)] if index.isdigit() else None
        shown = "" if value is None else f" “{value}”"
        return name, f"Vary {spec.label}{shown}: {error.message}"
    if field.startswith("models") or field == "vary":
        return None, error.message
    return form.field_for_error(error), error.message


def _submitted(
    request: HttpRequest, entry: CatalogEntry, task: Task, url: str | None, *, created: bool, page: str
):
    """An htmx submit that made (or replayed) a task: `page`'s `submitted` partial, i.e. its status
    panel, plus out-of-band a fresh form token (the next press is a new task), the button's
    estimate set to what this task was priced at (where the page shows one), and the task at the
    head of this visit's strip. `url`, if any, is pushed as the page's address.
    `playground:submitted` tells app.js to clear stale errors and bring the panel into view."""
    task, events = owned_task_with_events(request, task.pk)
    context = {
        **_status_context(request, task, events),
        "entry": entry,
        "form_token": secrets.token_urlsafe(16),
        "estimate": task.cost_estimate,
        "item": _strip_item(request, task),
        "new_in_strip": created,
    }
    response = render(request, f"{page}#submitted", context)
    if url:
        response["HX-Push-Url"] = url
    response["HX-Trigger-After-Settle"] = json.dumps({"playground:submitted": {"task": task.pk}})
    return response


@visitor_required
@require_GET
def estimate(request: HttpRequest, slug: str) -> HttpResponse:
    """The Generate button's estimate for the form as it is on screen, priced by the same form
    cleaning as a submit (so what the button says is what the task is charged)."""
    entry = _visible_entry(request, slug)
    context = {
        **_estimate_context(request, entry, SchemaForm(entry, request.GET), request.GET),
        "entry": entry,
    }
    return render(request, "web/playground.html#cost", context)


@visitor_required(lean=True)
@require_GET
def task_page(request: HttpRequest, task_id: str) -> HttpResponse:
    try:
        if request.htmx and (unchanged := _unchanged_panel(request, task_id)):
            return unchanged
        task, events = owned_task_with_events(request, task_id)
    except AccessEnded as exc:
        return access_ended(request, exc.message, sign_in=exc.sign_in, retry=exc.retry)
    except Http404:
        if request.htmx:  # a poll of a task out of reach must stop, not poll a 404 forever
            return access_ended(request, TASK_GONE, status=404)
        raise
    if request.htmx:
        return _status_panel(request, task, events)
    context = _status_context(request, task, events)
    entry = CatalogEntry.objects.get(pk=task.model_id)  # with the schema, which the panel did not need
    form, problems = form_for_input(
        entry, form_input(request.caller, entry, task)
    )  # the input, deferred by the panel's query
    context.update(_playground_context(request, entry, form, carry_problems=problems))
    if not request.caller.is_guest:  # guests on a demo pass have no key to run them with
        base = public_base(request)
        context.update(
            snippets=api_snippets(base, entry.slug, shared_input(entry, task.input, base, task.owner_id))
        )
    response = render(request, "web/playground.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@visitor_required
@require_GET
def task_thumb(request: HttpRequest, task_id: str) -> HttpResponse:
    """One task's item in the visit strip; a running task's item polls this until it ends (286)."""
    tasks = Task.objects.filter(request.caller.task_scope(), pk=task_id).select_related("model")
    task = tasks.defer("input").annotate(prompt=InputText("prompt")).first()
    if task is None:
        if request.htmx:  # out of reach now: the item leaves the strip (the panel is not this poll's)
            return HttpResponse(status=HTMX_STOP_POLLING)
        raise Http404("No such task.")
    status = HTMX_STOP_POLLING if task.is_terminal else 200
    # `present`: the item is in presentation mode's strip, whose links stay in presentation mode.
    context = {"item": _strip_item(request, task), **present_flags(request)}
    return render(request, "web/playground.html#strip-item", context, status=status)


@visitor_required
@require_POST
def task_cancel(request: HttpRequest, task_id: str) -> HttpResponse:
    try:
        task, _ = owned_task_with_events(request, task_id)
    except Http404:
        if request.htmx:
            return access_ended(request, TASK_GONE, status=404)
        raise
    with suppress(TaskConflict):  # it ended meanwhile: the panel shows how
        cancel_task(task)
    if request.htmx:
        task, events = owned_task_with_events(request, task_id)
        response = render(request, "web/playground.html#task-status", _status_context(request, task, events))
        response.status_code = HTMX_STOP_POLLING if task.is_settled else 200
        return response
    return redirect("task", task_id=task_id)


def _share_answer(
    request: HttpRequest, task: Task, share: Share | None, *, error: str = "", status: int = 200
) -> HttpResponse:
    """After Share or Unshare: the Share box for htmx, else the task's page again."""
    if request.htmx:
        context = {"task": task, **_share_context(request, task, share, error=error)}
        return render(request, "web/playground.html#task-share", context)
    if error:
        return render(request, "web/demo_refused.html", {"message": error}, status=status)
    return redirect("task", task_id=task.pk)


@visitor_required
@require_POST
def task_share(request: HttpRequest, task_id: str) -> HttpResponse:
    """Share a task of the caller's on a public page (`sharing.share_task`); a guest only when
    their pass allows it. Anyone else's task is a 404, as everywhere."""
    task, _ = owned_task_with_events(request, task_id)
    if not request.caller.may_share():
        return _share_answer(request, task, _loaded_share(task), error=SHARING_NOT_ALLOWED, status=403)
    try:
        shared = share_task(task, show_parameters=request.POST.get("show_parameters") == "on")
    except NotShareable as exc:
        return _share_answer(request, task, None, error=str(exc), status=409)
    return _share_answer(request, task, shared.share)


@visitor_required
@require_POST
def task_unshare(request: HttpRequest, task_id: str) -> HttpResponse:
    """End a task's public page: it and its files answer 404 from now on. Unsharing is always
    allowed to whoever sees the task (a guest whose pass no longer allows sharing too)."""
    task, _ = owned_task_with_events(request, task_id)
    unshare_task(task)
    return _share_answer(request, task, None)


@visitor_required
@require_GET
def task_zip(request: HttpRequest, task_id: str) -> HttpResponse:
    """All of a task's outputs as one zip, streamed: files are read from storage chunk by chunk
    while the archive goes out (stored, not compressed: images and videos are compressed
    already), so memory stays flat whatever their size, and the length is known up front."""
    task, _ = owned_task_with_events(request, task_id)
    items = (task.output or {}).get(task.model.output_key, []) if task.status == Status.SUCCEEDED else []
    if not items:
        raise Http404("This task has no outputs.")
    archive = ZipStream(sized=True)
    for item in items:
        name = f"{task.pk}-{item['file'].rsplit('/', 1)[-1]}"
        archive.add(_stored_chunks(item["file"]), name, size=default_storage.size(item["file"]))
    response = StreamingHttpResponse(archive, content_type="application/zip")
    response["Content-Length"] = str(len(archive))
    response["Content-Disposition"] = f'attachment; filename="{task.pk}.zip"'
    return response


def _stored_chunks(path: str):
    with default_storage.open(path, "rb") as handle:
        yield from handle.chunks(64 * 1024)


@person_required
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    """The workspace's tasks, newest first: in a team's, every member's, with who ran each."""
    caller = request.caller
    tasks = Task.objects.filter(caller.task_scope()).select_related(
        "model", "demo_pass", "share", "owner", "batch"
    )
    tasks = tasks.order_by("-created_at", "-pk")
    filters = {k: request.GET.get(k, "").strip() for k in ("model", "status", "q", "shared", "member")}
    members = team_members(caller.team_id, with_tasks=tasks) if caller.team_id is not None else []
    if filters["member"]:
        tasks = tasks.filter(owner__username=filters["member"])
    if filters["shared"] == "1":
        tasks = tasks.filter(share__isnull=False)
    if filters["model"]:
        tasks = tasks.filter(model__slug=filters["model"])
    if filters["status"] in Status.values:
        tasks = tasks.filter(status=filters["status"])
    if filters["q"]:
        tasks = tasks.filter(input__prompt__icontains=filters["q"])
    # The input can hold large data URIs: fetch only its prompt.
    tasks = tasks.defer("input").annotate(prompt=InputText("prompt"))
    page = Paginator(tasks, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"task": task, "thumb": next(iter(_outputs(request, task)), None)} for task in page]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "web/history.html",
        {
            "page": page,
            "rows": rows,
            "filters": filters,
            "entries": CatalogEntry.objects.filter(is_active=True).only("slug", "title").order_by("title"),
            "statuses": Status.choices,
            "members": members,
            "query": query.urlencode(),
            "nav": "history",
        },
    )


@person_required
@require_GET
def compare(request: HttpRequest) -> HttpResponse:
    ids = request.GET.getlist("ids")[:8]
    tasks = list(
        Task.objects.filter(request.caller.task_scope(), pk__in=ids).select_related("model", "owner")
    )
    tasks.sort(key=lambda t: ids.index(t.pk))
    keys = ["model", *sorted({k for t in tasks for k in t.input})]
    # Fields by their labels in the models' forms (the first model that has the field names it).
    labels = {"model": "Model"}
    for model in {t.model_id: t.model for t in tasks}.values():
        for spec in field_specs(model):
            labels.setdefault(spec.name, spec.label)
    rows = []
    for key in keys:
        values = [t.model.title if key == "model" else t.input.get(key, None) for t in tasks]
        shown = [
            "—" if v is None else v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
            for v in values
        ]
        differs = len({json.dumps(v, sort_keys=True) for v in values}) > 1
        rows.append({"key": key, "label": labels.get(key, key), "values": shown, "differs": differs})
    columns = [{"task": t, "outputs": _outputs(request, t)} for t in tasks]
    context = {"rows": rows, "columns": columns, "too_few": len(tasks) < 2, "in_team": request.caller.team_id}
    return render(request, "web/compare.html", context)


@visitor_required
@require_http_methods(["GET", "POST"])
def pick_model(request: HttpRequest) -> HttpResponse:
    """The model picker. Without JavaScript (GET) it opens the chosen model's playground, or the
    re-run of `from` there. With htmx (POST, the run form included) the chosen model's playground
    comes back with every field the two models share carried over from the form as it was (typed,
    chosen or uploaded) and what the new model does not accept flagged. The picker's own value
    comes first in the POST, as a schema field may also be called `model`."""
    if request.method == "GET":
        entry = request.caller.entries().filter(slug=request.GET.get("model", "")).first()
        if entry is None:
            return redirect("home")
        rerun = f"?from={quote(request.GET['from'])}" if request.GET.get("from") else ""
        return redirect(reverse("play", args=[entry.slug]) + rerun)
    entry = _visible_entry(request, (request.POST.getlist("model") or [""])[0])
    previous = _visible_entry(request, request.POST.get("switch_from", ""))
    # Files chosen but not sent yet stay in the browser (app.js names their fields): a file input
    # cannot be filled by the server, so the person is told to choose them again.
    typed = SchemaForm(previous, request.POST).draft_input()
    form, problems = form_for_input(entry, typed, source=previous)
    labels = {spec.name: spec.label for spec in field_specs(previous)}
    target_fields = {spec.name for spec in form.specs}
    for name in dict.fromkeys(n.split("__")[0] for n in request.POST.getlist("dropped_files")):
        if name in labels:
            problems.append(
                f"The files you chose for “{labels[name]}” were not carried over: choose them again."
            )
        if name in target_fields:  # said beside the field too (opening Advanced if it is there)
            form.rerun_errors.setdefault(name, []).append(
                "Choose these files again: they were not carried over."
            )
    context = _playground_context(request, entry, form, carry_problems=problems, switched_from=previous)
    response = render(request, "web/playground.html", context)
    response["HX-Push-Url"] = reverse("play", args=[entry.slug])
    return response


class SignInView(LoginView):
    """Django's sign-in, throttled (access.signin): too many attempts are refused with a 429 and
    the wait beside the form, which stays open for anyone else signing in from here."""

    authentication_form = SignInForm

    def get_context_data(self, **kwargs):
        return {
            **super().get_context_data(**kwargs),
            "first_account_needed": first_account_needed(),
            "signup_open": settings.PLAYGROUND_SIGNUP,
        }


@require_http_methods(["GET", "POST"])
def sign_up(request: HttpRequest) -> HttpResponse:
    if not settings.PLAYGROUND_SIGNUP:
        context = {
            "heading": "Sign-up is closed",
            "message": "Accounts here are made by invitation.",
            "hint": "Ask a team's admin for an invite link: opening it lets you create your account.",
        }
        return render(request, "web/demo_refused.html", context, status=404)
    if request.user.is_authenticated:
        return redirect("home")
    form = SignUpForm(request.POST or None, request=request)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("home")
    return render(request, "registration/signup.html", {"form": form})


@never_cache
@require_http_methods(["GET", "POST"])
def demo_entry(request: HttpRequest, token: str) -> HttpResponse:
    """A demo link's landing page: what the pass offers and, for someone already signed in or on
    another pass, what entering changes. Only its Enter button (a POST with CSRF) makes the
    visitor a guest, so a link alone, opened or embedded anywhere, never switches a session."""
    try:
        demo_pass = pass_for_token(token)
    except PassRefused as exc:
        return render(request, "web/demo_refused.html", {"message": str(exc)}, status=403)
    if request.method == "POST":
        if request.user.is_authenticated:
            logout(request)  # the landing page said so: entering continues as a guest
        if enter_pass(request, demo_pass):  # a new guest: a new visit
            request.session.pop(VISIT_SESSION_KEY, None)
        return redirect("home")
    current = current_pass_id(request)
    other_pass = None
    if current and current != demo_pass.public_id and not request.user.is_authenticated:
        other_pass = DemoPass.objects.filter(public_id=current).first()
    titles = dict(CatalogEntry.objects.filter(slug__in=demo_pass.model_slugs).values_list("slug", "title"))
    context = {
        "demo_pass": demo_pass,
        "host": demo_pass.owner.get_full_name(),
        "models": [titles.get(slug, slug) for slug in demo_pass.model_slugs],
        "same_pass": current == demo_pass.public_id and not request.user.is_authenticated,
        "other_pass": other_pass,
        "link": pass_link(request, demo_pass),
    }
    return render(request, "web/demo_landing.html", context)


@require_http_methods(["GET", "POST"])
def first_account(request: HttpRequest) -> HttpResponse:
    """With no account at all, the first visitor creates the administrator account here."""
    if not first_account_needed():
        raise Http404("An account exists already: sign in.")
    form = FirstAccountForm(request.POST or None, request=request)
    if request.method == "POST" and form.is_valid():
        user = form.save(commit=False)
        user.is_staff = user.is_superuser = True
        user.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("home")
    return render(request, "registration/first_account.html", {"form": form})


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})
