"""Presentation mode (`/present`): the playground for a room, on a projector or a shared screen.

The same run form, submit (`views._submit`), status panel and polls as the playground, laid out to be
read from the back of the room: no navigation, keys or costs; a large prompt and Generate; the
result filling the screen; this visit's results as a strip along the bottom; the other fields in a
drawer. Without JavaScript it is a plain large-type page: the form posts, and the result's page
refreshes itself while its task runs.

The model picker offers the models of the guest's pass, or those a presenter chose with
`?models=a,b`, else every model they may run. The room joins through a demo pass: its link as a QR
code (the guest's own pass, or the presenter's, `?pass=<id>`), and for the pass's owner "show
audience results" puts what its guests make into the strip (`audience`, polled).

Query parameters kept from page to page: `models`, `pass` and `audience` (`KEPT`); `task` names the
result shown (else this visit's latest).
"""

import hashlib
import re
from dataclasses import dataclass, field
from functools import partial

from django import forms
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods

from playground.access.passes import still_active
from playground.catalog.models import CatalogEntry
from playground.catalog.schema_forms import SchemaForm
from playground.generations.models import TERMINAL, InputText, Task
from playground.generations.outputs import public_base, token_window
from playground.generations.presenters import conditional_response
from playground.keys.models import DemoPass

from .join import pass_link
from .views import (
    HTMX_STOP_POLLING,
    PRESENT_KEPT,
    VISIT_SESSION_KEY,
    VISIT_STRIP_SIZE,
    _default_entry,
    _playground_context,
    _status_context,
    _strip_item,
    _submit,
    owned_task_with_events,
    present_flags,
    visitor_required,
)

PAGE = "web/present.html"
KEPT = PRESENT_KEPT
AUDIENCE_POLL_SECONDS = 3
SLUG = re.compile(r"[-a-zA-Z0-9_]+")
SHOWN_SLUG_CHARS = 60  # of a slug someone typed, when a refusal names it
MOST_CHOSEN_MODELS = 30


@dataclass
class PresentRefused(Exception):
    """Presentation mode cannot show what was asked for; `message` says why in plain words."""

    message: str
    status: int
    offered: list[CatalogEntry] = field(default_factory=list)


def _model_named(request: HttpRequest, slug: str) -> CatalogEntry:
    """The model `slug` if the caller may run it; else why not: there is no such model (404), or
    a guest's pass does not include it (403)."""
    entry = CatalogEntry.objects.filter(slug=slug, is_active=True).first() if SLUG.fullmatch(slug) else None
    caller = request.caller
    if entry is not None and caller.allows(entry):
        return entry
    offered = list(caller.entries().only("slug", "title").order_by("kind", "title"))
    if entry is not None and caller.is_guest:
        message = f"The demo pass “{caller.demo_pass.name}” does not include {entry.title}."
        raise PresentRefused(message, 403, offered)
    shown = slug if len(slug) <= SHOWN_SLUG_CHARS else slug[: SHOWN_SLUG_CHARS - 1] + "…"
    raise PresentRefused(f"There is no model “{shown}” here.", 404, offered)


def _picker_entries(request: HttpRequest) -> list[CatalogEntry]:
    """The model picker's models: those named by `?models=a,b`, in that order, else every model
    the caller may run (a guest: their pass's). A name that is not one of those is refused."""
    wanted = list(dict.fromkeys(s.strip() for s in request.GET.get("models", "").split(",") if s.strip()))
    offered = request.caller.entries().only("slug", "title", "kind")
    if len(wanted) > MOST_CHOSEN_MODELS:
        raise PresentRefused(
            f"Choose at most {MOST_CHOSEN_MODELS} models (?models=).",
            400,
            list(offered.order_by("kind", "title")),
        )
    if not wanted:
        return list(offered.order_by("kind", "title"))
    found = {entry.slug: entry for entry in offered.filter(slug__in=wanted)}
    for slug in wanted:
        if slug not in found:
            _model_named(request, slug)  # raises, saying why
    return [found[slug] for slug in wanted]


def _kept_query(request: HttpRequest, **changes: str) -> str:
    """`?models=…&pass=…&audience=…` as this request has them, with `changes`; "" when empty."""
    query = QueryDict(mutable=True)
    for name in KEPT:
        if request.GET.get(name):
            query[name] = request.GET[name]
    for name, value in changes.items():
        query[name] = value
    return f"?{query.urlencode()}" if query else ""


def _refused(request: HttpRequest, refusal: PresentRefused) -> HttpResponse:
    context = {"message": refusal.message, "offered": refusal.offered}
    return render(request, "web/present_refused.html", context, status=refusal.status)


# --- The page ----------------------------------------------------------------------------------------


@visitor_required
@require_GET
def present(request: HttpRequest) -> HttpResponse:
    """`/present`: the model picked (`?model=`, the picker without JavaScript) opens at its own
    address; else the model of the result shown, or the first the picker offers."""
    if picked := request.GET.get("model", ""):
        try:
            entry = _model_named(request, picked)
        except PresentRefused as refusal:
            return _refused(request, refusal)
        return redirect(reverse("present-model", args=[entry.slug]) + _kept_query(request))
    return _present_page(request, None)


@visitor_required
@require_http_methods(["GET", "POST"])
def present_model(request: HttpRequest, slug: str) -> HttpResponse:
    """`/present/<slug>`: presentation mode with this model; a POST is its run form's submit."""
    return _present_page(request, slug)


def _present_page(request: HttpRequest, slug: str | None) -> HttpResponse:
    try:
        entries = _picker_entries(request)
        entry = _model_named(request, slug) if slug else None
    except PresentRefused as refusal:
        return _refused(request, refusal)
    page_context = partial(_present_context, entries=entries)
    if request.method == "POST":

        def task_url(task: Task) -> str:
            return reverse("present-model", args=[entry.slug]) + _kept_query(request, task=task.pk)

        return _submit(request, entry, page=PAGE, context=page_context, task_url=task_url)
    panel = _shown_result(request)
    if entry is None:
        shown_model = panel["task"].model_id if panel else None
        entry = next((e for e in entries if e.pk == shown_model), None)
        entry = entry or (entries[0] if request.GET.get("models") else _default_entry(request))
        if entry is None:
            return render(request, "web/empty_catalog.html")
        entry = CatalogEntry.objects.get(pk=entry.pk)  # with its schema: the picker's rows have none
    context = page_context(request, entry, SchemaForm(entry), **panel)
    return render(request, PAGE, context)


def _shown_result(request: HttpRequest) -> dict:
    """The big result's context: the task `?task=` names (one the caller may see, else 404), or
    this visit's latest while the visitor may still see it; {} for none."""
    asked = request.GET.get("task", "")
    task_id = asked or next(iter(request.session.get(VISIT_SESSION_KEY, [])), None)
    if not task_id:
        return {}
    try:
        task, events = owned_task_with_events(request, task_id)
    except Http404:
        if asked:
            raise
        return {}
    return _status_context(request, task, events)


def _present_context(
    request: HttpRequest, entry: CatalogEntry, form: SchemaForm, *, entries: list, **extra
) -> dict:
    """The playground's context for `entry` (`views._playground_context`) and what presentation
    mode adds: the prompt apart from the drawer's fields, the kept query, where Esc leaves to and
    the join panel."""
    context = _playground_context(request, entry, form, entries=entries, batches=False, **extra)
    prompt, drawer, advanced = _form_parts(entry, form)
    kept = _kept_query(request)
    context.update(
        **present_flags(request),
        prompt_item=prompt,
        drawer=drawer,
        advanced=advanced,
        drawer_count=len(drawer) + len(advanced),
        drawer_open=any(item["errors"] for item in (*drawer, *advanced)),
        advanced_open=any(item["errors"] for item in advanced),
        kept_query=kept,
        kept_fields=[(name, request.GET[name]) for name in KEPT if request.GET.get(name)],
        leave_url=reverse("play", args=[entry.slug]),
        join=_join_panel(request),
    )
    if context["join"].get("audience"):
        context.update(_audience_context(request, context["join"]["pass"]))
    return context


def _form_parts(entry: CatalogEntry, form: SchemaForm) -> tuple[dict | None, list[dict], list[dict]]:
    """The run form in three: the prompt (large, always in view), the other fields and the
    advanced ones (both in the drawer)."""
    name = entry.roles.get("prompt")
    if name in form.fields:
        widget = form.fields[name].widget
        widget.attrs.update(
            {"data-present-prompt": "", "autofocus": True, "placeholder": "Describe what to make…"}
        )
        if isinstance(widget, forms.Textarea):
            widget.attrs["rows"] = 2
    groups = form.display_groups()
    prompt = next((item for item in groups["main"] if item["spec"].name == name), None)
    drawer = [item for item in groups["main"] if item is not prompt]
    return prompt, drawer, groups["advanced"]


# --- Letting the room join -------------------------------------------------------------------------


def _join_panel(request: HttpRequest) -> dict:
    """The QR panel: a guest's own pass; for a signed-in presenter the active pass `?pass=` names,
    else their newest, with the "show audience results" switch (`?audience=1`)."""
    caller = request.caller
    if caller.is_guest:
        return {"pass": caller.demo_pass, "link": pass_link(request, caller.demo_pass)}
    passes = list(still_active(caller.audience_passes()).only("pk", "name", "public_id", "expires_at")[:20])
    wanted = request.GET.get("pass", "")
    demo_pass = next((p for p in passes if str(p.pk) == wanted), None)
    notice = ""
    if wanted and demo_pass is None:
        notice = "The pass asked for is not one of your active demo passes."
    demo_pass = demo_pass or next(iter(passes), None)
    if demo_pass is None:
        return {"notice": notice}
    return {
        "pass": demo_pass,
        "link": pass_link(request, demo_pass),
        "others": [p for p in passes if p.pk != demo_pass.pk],
        "notice": notice,
        "owner": True,
        # Only for the pass asked for: when that one has ended (or is not theirs), the newest shows
        # instead, but its room's results wait for the switch.
        "audience": request.GET.get("audience") == "1" and not notice,
    }


def _audience_context(request: HttpRequest, demo_pass: DemoPass) -> dict:
    """The results of `demo_pass`'s guests, newest first, for its owner's strip, and their ETag.
    What this visit already shows is left out (it is in the strip once)."""
    tasks = list(
        Task.objects.filter(request.caller.audience_scope(demo_pass))
        .exclude(pk__in=request.session.get(VISIT_SESSION_KEY, []))
        .select_related("model")
        .defer("input", "model__input_schema", "model__example_input")
        .annotate(prompt=InputText("prompt"))
        .order_by("-created_at", "-pk")[:VISIT_STRIP_SIZE]
    )
    # What the strip shows of each: its status and thumbnail (signed per time window, per origin).
    shown = [demo_pass.pk, token_window(), public_base(request)]
    shown += [f"{t.pk}:{t.status}:{t.updated_at.isoformat()}" for t in tasks]
    digest = hashlib.blake2b("|".join(map(str, shown)).encode(), digest_size=12).hexdigest()
    return {
        "audience_pass": demo_pass,
        "audience_items": [{**_strip_item(request, task), "audience": True} for task in tasks],
        "audience_etag": f'"{digest}"',
        "audience_poll": f"every {AUDIENCE_POLL_SECONDS}s",
        "present": True,
    }


@visitor_required
@require_GET
def audience(request: HttpRequest, pass_id: int) -> HttpResponse:
    """The audience's results in the presenter's strip: the tasks of one of the caller's own demo
    passes (`Caller.audience_passes`), newest first. Polled; 304 while nothing changed. Once the
    pass has ended and so have all its tasks, nothing can change: the last answer stops the poll
    (286, with a strip that polls no more). A guest, even of that pass, or anyone else gets 404."""
    caller = request.caller
    demo_pass = caller.audience_passes().filter(pk=pass_id).first()
    if demo_pass is None:
        raise Http404("No such pass.")
    context = _audience_context(request, demo_pass)
    ended = demo_pass.status != "active" and (
        not Task.objects.filter(caller.audience_scope(demo_pass)).exclude(status__in=TERMINAL).exists()
    )
    if ended:
        context["audience_poll"] = ""
        response = render(request, f"{PAGE}#audience-strip", context, status=HTMX_STOP_POLLING)
    else:
        response = conditional_response(
            request, context["audience_etag"], lambda: render(request, f"{PAGE}#audience-strip", context)
        )
    patch_vary_headers(response, ("HX-Request",))
    return response
