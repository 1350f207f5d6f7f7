"""Keys & access pages: API keys we issue, the user's MindVideo key, their webhook signing secret,
demo passes, usage.

Every action is a POST that answers with the affected section (htmx swaps it in place) or, without
JavaScript, redirects back to the page. Issued API keys are shown once, right after creation, and
never rendered again; the webhook signing secret is rendered only in the answer to a Reveal or a
Rotate. Every view here answers with `never_cache` (Cache-Control: no-store, private): the page
shows live demo-pass links and, once each, secrets, none of which may linger in any cache.
"""

import unicodedata
from datetime import timedelta
from decimal import Decimal

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db.models import Count, Max, Sum
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_POST

from playground.access.addresses import client_address
from playground.access.passes import create_pass, revoke_pass
from playground.access.ratelimit import MOST_REQUESTS_PER_MINUTE, api_rpm_ceiling
from playground.catalog.models import CatalogEntry
from playground.generations.models import Task
from playground.generations.services import cancel_unfinished, committed_spend, in_period
from playground.generations.sharing import unshare_all
from playground.generations.usage import usage_for
from playground.keys import audit, webhook_secrets
from playground.keys.credentials import delete_upstream_key as remove_upstream_key
from playground.keys.credentials import store_if_accepted, stored_upstream_key, test_stored_upstream_key
from playground.keys.models import ApiKey, AuditEntry, BudgetPeriod, DemoPass
from playground.keys.services import delete_key, expiry_through, issue_key, roll_key, set_key_disabled
from playground.teams.models import Membership

from .charts import spend_chart
from .csv_export import csv_response
from .join import pass_link
from .views import person_required

SPEND = Sum(Coalesce("tasks__cost_actual", "tasks__cost_estimate"))
CENTS_HUNDREDTHS = Decimal("0.0001")  # spend in the CSV: four decimals, as on the page


MAX_MONEY = Decimal(1_000_000)


class MoneyField(forms.DecimalField):
    """An amount in dollars (a budget, a spend cap): up to a million, to the hundredth of a cent,
    with one plain error at a time rather than Django's digit counts."""

    def __init__(self, *, min_value: Decimal, **kwargs):
        too_large = "Enter at most $1,000,000."
        kwargs["error_messages"] = {
            "invalid": "Enter an amount in dollars, e.g. 5 or 0.25.",
            "min_value": f"Enter at least ${min_value}.",
            "max_value": too_large,
            "max_digits": too_large,
            "max_whole_digits": too_large,
            "max_decimal_places": "Use at most 4 decimal places, e.g. 0.0025.",
        }
        super().__init__(min_value=min_value, max_value=MAX_MONEY, max_digits=12, decimal_places=4, **kwargs)

    def to_python(self, value):
        """As people write amounts: "$0.40", "1,000", " 5 "."""
        if isinstance(value, str):
            value = value.strip().removeprefix("$").replace(",", "").strip()
        return super().to_python(value)

    def run_validators(self, value):
        try:
            super().run_validators(value)
        except forms.ValidationError as error:
            raise forms.ValidationError(error.error_list[:1]) from None


class NewKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “nightly-renders”.")
    expires_on = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Optional: the key works through the end of this day.",
    )
    budget = MoneyField(
        required=False,
        min_value=Decimal("0.0001"),
        help_text="Optional: the most this key may spend, in $ (empty: no limit). Tasks that would "
        "go over it are refused (402).",
    )
    budget_period = forms.ChoiceField(
        required=False,
        label="Budget resets",
        choices=[("", "never (for all time)"), *BudgetPeriod.choices],
        help_text="Calendar days, weeks from Monday, months from the 1st.",
    )
    requests_per_minute = forms.IntegerField(
        required=False,
        min_value=1,
        label="Requests a minute",
        help_text="Optional: more are refused (429) until the minute ends.",
    )
    models = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=(),
        label="Only these models",
        help_text="None ticked: every model. Others are refused (403 model_not_allowed).",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        entries = CatalogEntry.objects.filter(is_active=True).order_by("kind", "title")
        self.fields["models"].choices = [(e.slug, e.title) for e in entries]
        # The browser's date picker offers only the days the form accepts (from tomorrow).
        self.fields["expires_on"].widget.attrs["min"] = (timezone.localdate() + timedelta(days=1)).isoformat()
        ceiling = api_rpm_ceiling()
        rpm = self.fields["requests_per_minute"]
        most = MOST_REQUESTS_PER_MINUTE
        rpm.max_value = most if ceiling is None else min(ceiling, most)
        rpm.validators.append(MaxValueValidator(rpm.max_value))
        rpm.widget.attrs["max"] = rpm.max_value
        if rpm.max_value == ceiling:
            rpm.help_text += f" At most {ceiling}, the server's limit."

    def clean(self):
        data = super().clean()
        if data.get("budget_period") and data.get("budget") is None:
            self.add_error("budget_period", "Set a budget for it to reset, or choose never.")
        return data

    def clean_expires_on(self):
        day = self.cleaned_data["expires_on"]
        if day and day <= timezone.localdate():
            raise forms.ValidationError("Pick a day after today.")
        if day and day.year > timezone.localdate().year + 100:
            raise forms.ValidationError("Pick a day within the next hundred years, or leave it empty.")
        return day


class UpstreamKeyForm(forms.Form):
    label = forms.CharField(max_length=100, required=False)
    secret = forms.CharField(
        label="MindVideo key", max_length=500, widget=forms.PasswordInput(attrs={"autocomplete": "off"})
    )

    def clean_secret(self):
        """A key is one word: a space, line break or control character inside is something else
        pasted with it (and would go into the platform's Authorization header as it is)."""
        secret = self.cleaned_data["secret"]
        if any(char.isspace() or unicodedata.category(char).startswith("C") for char in secret):
            raise forms.ValidationError(
                "This has a space, line break or control character inside: paste only the key."
            )
        return secret


class DemoPassForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="e.g. “Friday demo”.")
    models = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, choices=())
    spend_cap = MoneyField(
        min_value=Decimal("0.01"), initial=5, help_text="The most its guests may spend in all, in $."
    )
    hours = forms.IntegerField(min_value=1, max_value=24 * 30, initial=24, label="Valid for (hours)")
    allow_sharing = forms.BooleanField(
        required=False,
        label="Guests may share their results",
        help_text="A guest's Share button makes a public page of their result, which stays up after the "
        "pass ends until you unshare it from your history.",
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "pass_%s")  # the API key form on the same page has a `name` too
        super().__init__(*args, **kwargs)
        entries = CatalogEntry.objects.filter(is_active=True).order_by("kind", "title")
        self.fields["models"].choices = [(e.slug, e.title) for e in entries]


def _key_rows(caller):
    """The workspace's keys the caller may see (`Caller.key_scope`) with their requests and spend; a
    key whose budget starts again each day, week or month also with what it spent in the current
    one (`budget_spend`)."""
    keys = list(
        ApiKey.objects.filter(caller.key_scope(), deleted_at__isnull=True)
        .select_related("team", "user")
        .annotate(task_count=Count("tasks"), spend=SPEND)
        .order_by("-created_at")
    )
    titles = dict(CatalogEntry.objects.values_list("slug", "title"))
    for key in keys:
        key.budget_spend = key.spend or Decimal(0)
        if key.budget is not None and key.budget_period:
            key.budget_spend = committed_spend(in_period(key.tasks.all(), key.budget_period))
        key.model_titles = [titles.get(slug, slug) for slug in key.allowed_models]
    return keys


def _pass_rows(request: HttpRequest):
    rows = (
        DemoPass.objects.filter(request.caller.pass_scope())
        .annotate(uses=Count("tasks"), spend=SPEND, last_use=Max("tasks__created_at"))
        .order_by("-created_at")
    )
    titles = dict(CatalogEntry.objects.values_list("slug", "title"))
    return [
        {
            "pass": p,
            "link": pass_link(request, p),
            "models": [titles.get(slug, slug) for slug in p.model_slugs],
        }
        for p in rows
    ]


def _context(request: HttpRequest, **extra) -> dict:
    signing = webhook_secrets.webhook_secret_rows(request.user.pk, request.caller.team_id)
    return {
        "keys": _key_rows(request.caller),
        # In a team's workspace the page shows the team's API keys; the team's MindVideo key, budgets
        # and audit log are on the team page, and demo passes and the webhook secret stay personal.
        "team": request.caller.team,
        "manages": request.caller.manages_workspace,
        "new_key_form": NewKeyForm(),
        # One's own key: never the team's key one may have stored as its admin (also `user`'s).
        "credential": stored_upstream_key(request.user.pk),
        "operator_key": bool(settings.MINDVIDEO_API_KEY),
        "upstream_form": UpstreamKeyForm(),
        "webhook_secret": next((row for row in signing if row.expires_at is None), None),
        "retired_webhook_secrets": [row for row in signing if row.expires_at is not None],
        "webhook_grace": webhook_secrets.grace_period(),
        "passes": _pass_rows(request),
        "audit_entries": AuditEntry.objects.filter(owner=request.user, team=None).select_related("actor")[
            :AUDIT_SHOWN
        ],
        "roll_grace": ROLL_GRACE_CHOICES,
        "pass_form": DemoPassForm(),
        "nav": "keys",
        **extra,
    }


def _section(request: HttpRequest, partial: str, **extra) -> HttpResponse:
    context = _context(request, **extra)
    if request.htmx:
        # The section, and the audit log beside it (out of band): a change shows there at once.
        section = render_to_string(f"web/keys.html#{partial}", context, request)
        if request.caller.team is not None:  # a team's log is on the team page
            return HttpResponse(section)
        log = render_to_string("web/keys.html#audit-log", {**context, "oob": True}, request)
        return HttpResponse(section + log)
    return render(request, "web/keys.html", context)


def _after_change(request: HttpRequest, partial: str) -> HttpResponse:
    """The changed section for htmx; without JavaScript, back to the page (POST, redirect, GET)."""
    return _section(request, partial) if request.htmx else redirect("keys")


@person_required
@never_cache
@require_GET
def keys_page(request: HttpRequest) -> HttpResponse:
    return render(request, "web/keys.html", _context(request))


@person_required
@never_cache
@require_POST
def create_key(request: HttpRequest) -> HttpResponse:
    form = NewKeyForm(request.POST)
    if not form.is_valid():
        return _section(request, "api-keys", new_key_form=form)
    day = form.cleaned_data["expires_on"]
    expires_at = expiry_through(day) if day else None
    data = form.cleaned_data
    issued = issue_key(
        request.user,
        name=data["name"],
        expires_at=expires_at,
        budget=data["budget"],
        budget_period=data["budget_period"],
        allowed_models=data["models"],
        requests_per_minute=data["requests_per_minute"],
        team=request.caller.team,
        by=by_person(request),
    )
    return _section(request, "api-keys", new_secret=issued.secret, new_key=issued.key)


def by_person(request: HttpRequest) -> audit.By:
    """The signed-in person making a change, for the audit log."""
    return audit.By(request.user, client_address(request))


def _own_key(request: HttpRequest, key_id: int) -> ApiKey:
    key = ApiKey.objects.filter(request.caller.key_scope(), pk=key_id, deleted_at__isnull=True).first()
    if key is None:
        raise Http404("No such key.")
    return key


@person_required
@never_cache
@require_POST
def key_action(request: HttpRequest, key_id: int, action: str) -> HttpResponse:
    key = _own_key(request, key_id)
    by = by_person(request)
    if action == "disable":
        set_key_disabled(key, True, by=by)
    elif action == "enable":
        set_key_disabled(key, False, by=by)
    elif action == "delete":
        delete_key(key, by=by)
    elif action == "roll":
        if key.user_id != request.user.pk:
            # A team's owners and admins may stop anyone's key, never hold a secret of it: its tasks
            # would be run, spent and shown as the person it was issued to.
            response = _section(request, "api-keys", roll_problem=(key.pk, ONLY_ITS_HOLDER_ROLLS))
            response.status_code = 403
            return response
        grace = ROLL_GRACE.get(request.POST.get("grace", ""))
        if grace is None:
            return _section(
                request, "api-keys", roll_problem=(key.pk, "Choose how long the old secret keeps working.")
            )
        try:
            issued = roll_key(key, grace, by=by)
        except ApiKey.DoesNotExist:  # deleted meanwhile (another tab)
            raise Http404("No such key.") from None
        return _section(request, "api-keys", new_secret=issued.secret, new_key=issued.key, rolled=True)
    else:
        raise Http404("No such action.")
    return _after_change(request, "api-keys")


ONLY_ITS_HOLDER_ROLLS = "Only the person it was issued to can roll it: disable or delete it instead."

# How long a rolled-out secret keeps working, as the keys page offers it.
ROLL_GRACE_CHOICES = [
    ("0", "stops now", timedelta(0)),
    ("3600", "for 1 hour", timedelta(hours=1)),
    ("86400", "for 24 hours", timedelta(days=1)),
    ("604800", "for 7 days", timedelta(days=7)),
]
ROLL_GRACE = {value: grace for value, _, grace in ROLL_GRACE_CHOICES}
AUDIT_SHOWN = 20


@person_required
@never_cache
@require_GET
def audit_csv(request: HttpRequest) -> HttpResponse:
    """Every entry of the account's audit log, newest first, as CSV."""
    entries = AuditEntry.objects.filter(owner=request.user, team=None).select_related("actor").iterator()
    return csv_response("audit-log.csv", audit.csv_rows(entries))


@person_required
@never_cache
@require_POST
def save_upstream_key(request: HttpRequest) -> HttpResponse:
    """Add or replace the MindVideo key: only a key the platform accepts replaces the old one."""
    form, result = upstream_key_posted(request)
    return _section(request, "upstream-key", upstream_form=form, upstream_result=result)


def upstream_key_posted(request: HttpRequest, team_id=None) -> tuple[UpstreamKeyForm, dict | None]:
    """The MindVideo key form's POST, for one's own key or (`team_id`) a team's: the form to show
    again and what came of it (None: the form has errors)."""
    form = UpstreamKeyForm(request.POST)
    if not form.is_valid():
        return form, None
    data = form.cleaned_data
    accepted, message = store_if_accepted(
        request.user, data["secret"], data["label"], by=by_person(request), team_id=team_id
    )
    again = UpstreamKeyForm() if accepted else UpstreamKeyForm(initial={"label": data["label"]})
    return again, {"ok": accepted, "message": message}


def upstream_key_tested(user_id, team_id=None) -> dict:
    """Test connection: the stored key tested and its state recorded (404 when none is stored)."""
    tested = test_stored_upstream_key(user_id, team_id)
    if tested is None:
        raise Http404("No stored key.")
    accepted, message = tested
    return {"ok": accepted, "message": message}


@person_required
@never_cache
@require_POST
def test_upstream_key(request: HttpRequest) -> HttpResponse:
    # One's own key only, never a team's one stored (that one is tested on the team page).
    return _section(request, "upstream-key", upstream_result=upstream_key_tested(request.user.pk))


@person_required
@never_cache
@require_POST
def delete_upstream_key(request: HttpRequest) -> HttpResponse:
    remove_upstream_key(request.user, by=by_person(request))
    return _section(request, "upstream-key", upstream_result={"ok": True, "message": "Key deleted."})


@sensitive_variables("secret")
def _webhook_secret_section(request: HttpRequest, secret: str, **extra) -> HttpResponse:
    return _section(request, "webhook-secret", revealed_secret=secret, **extra)


@person_required
@never_cache
@require_POST
@sensitive_variables("secret")
def reveal_webhook_secret(request: HttpRequest) -> HttpResponse:
    """Show the user's webhook signing secret (made now if they have none yet)."""
    if not request.caller.manages_workspace:
        raise Http404("Only the team's owners and admins see its webhook secret.")
    try:
        secret = webhook_secrets.current_webhook_secret(request.user.pk, request.caller.team_id)
    except webhook_secrets.WebhookSecretUnreadable as exc:
        return _section(request, "webhook-secret", webhook_problem=str(exc))
    return _webhook_secret_section(request, secret)


@person_required
@never_cache
@require_POST
@sensitive_variables("secret")
def rotate_webhook_secret(request: HttpRequest) -> HttpResponse:
    """Make a new webhook signing secret and show it; the old ones keep signing for the grace
    period, or stop at once when the person says one leaked (`end_previous`)."""
    if not request.caller.manages_workspace:
        raise Http404("Only the team's owners and admins rotate its webhook secret.")
    keep_previous = request.POST.get("end_previous") != "on"
    secret = webhook_secrets.rotate_webhook_secret(
        request.user.pk, keep_previous=keep_previous, by=by_person(request), team_id=request.caller.team_id
    )
    return _webhook_secret_section(request, secret, rotated=True, ended_previous=not keep_previous)


@person_required
@never_cache
@require_POST
def create_demo_pass(request: HttpRequest) -> HttpResponse:
    if not request.caller.manages_workspace:
        raise Http404("Only the team's owners and admins make its demo passes.")
    form = DemoPassForm(request.POST)
    if not form.is_valid():
        return _section(request, "demo-passes", pass_form=form)
    data = form.cleaned_data
    created = create_pass(
        request.user,
        data["name"],
        data["models"],
        data["spend_cap"],
        data["hours"],
        allow_sharing=data["allow_sharing"],
        team=request.caller.team,
        by=by_person(request),
    )
    return _section(request, "demo-passes", new_pass=created)


@person_required
@never_cache
@require_POST
def revoke_demo_pass(request: HttpRequest, pass_id: int) -> HttpResponse:
    demo_pass = DemoPass.objects.filter(request.caller.pass_scope(), pk=pass_id).first()
    if demo_pass is None:
        raise Http404("No such pass.")
    revoke_pass(demo_pass, by=by_person(request))
    cancel_unfinished(demo_pass.tasks.all())  # the guests' running tasks stop spending too
    unshare_all(demo_pass.tasks.all())  # and the pages they shared end: revoking stops the demo
    return _after_change(request, "demo-passes")


def _usage(request: HttpRequest):
    caller = request.caller
    return usage_for(caller.task_scope(), per_member=caller.team is not None)


def _member_budgets(caller) -> dict[str, dict]:
    """In a team's workspace, each member's budget within it and what is left of it this period."""
    if caller.team is None:
        return {}
    budgets = {}
    for membership in Membership.objects.filter(team_id=caller.team_id, budget__isnull=False).select_related(
        "user"
    ):
        tasks = in_period(
            Task.objects.filter(team_id=caller.team_id, owner_id=membership.user_id), membership.budget_period
        )
        left = max(membership.budget - committed_spend(tasks), Decimal(0))
        budgets[membership.user.get_username()] = {
            "budget": membership.budget,
            "left": left,
            "period": membership.get_budget_period_display() if membership.budget_period else "",
        }
    return budgets


@person_required
@require_GET
def usage(request: HttpRequest) -> HttpResponse:
    summary = _usage(request)
    budgets = _member_budgets(request.caller)
    members = [{"row": row, "budget": budgets.get(row.label)} for row in summary.by_member]
    context = {
        "usage": summary,
        "chart": spend_chart(summary.days),
        "team": request.caller.team,
        "members": members,
        "nav": "usage",
    }
    return render(request, "web/usage.html", context)


@person_required
@require_GET
def usage_csv(request: HttpRequest) -> HttpResponse:
    summary = _usage(request)
    groups = (
        ("day", summary.days),
        ("member", summary.by_member),
        ("key", summary.by_key),
        ("model", summary.by_model),
    )
    rows = [
        [group, row.label, row.tasks, row.succeeded, row.spend.quantize(CENTS_HUNDREDTHS)]
        for group, rows in groups
        for row in rows
    ]
    name = (
        f"playground-usage-{request.caller.team.slug}.csv" if request.caller.team else "playground-usage.csv"
    )
    return csv_response(name, [["group", "label", "tasks", "succeeded", "spend"], *rows])
