"""Teams in the browser: the workspace switcher, the team page (members, invites, budgets, the
team's MindVideo key, its audit log) and the invite link.

Which workspace a person works in is their session's (`access.callers.switch_workspace`); every
other page follows it through `request.caller`. Who may change what is decided once, in
`teams.services.role_change_refused` and `Caller.manages_workspace`. Every change is a plain POST
that redirects back (or shows the page again with what went wrong, or with an invite's link,
which is shown once), so the page works without JavaScript.
"""

import re
from functools import wraps

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from playground.access.callers import switch_workspace
from playground.generations.models import Task
from playground.generations.services import committed_spend, in_period
from playground.keys import audit
from playground.keys.credentials import (
    delete_upstream_key,
    stored_upstream_key,
)
from playground.keys.models import AuditEntry, BudgetPeriod
from playground.teams.models import SLUG_PATTERN, Invite, Membership, Role
from playground.teams.services import (
    ONLY_MANAGERS,
    TeamError,
    accept_invite,
    add_member,
    create_invite,
    create_team,
    invite_for_token,
    remove_member,
    revoke_invite,
    role_change_refused,
    set_member_budget,
    set_team_budget,
    teams_of,
)

from .account_views import (
    AUDIT_SHOWN,
    MoneyField,
    UpstreamKeyForm,
    by_person,
    upstream_key_posted,
    upstream_key_tested,
)
from .csv_export import csv_response
from .forms import SignUpForm
from .views import access_ended, landing_page, person_required


class NewTeamForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="e.g. “Design studio”.")
    slug = forms.SlugField(
        max_length=50, label="Short name", help_text="Lowercase letters, digits and dashes, e.g. design."
    )

    def clean_slug(self):
        """Django's slug allows underscores and a leading dash, which the team's own rule (and so
        the team commands) refuse: that rule decides."""
        slug = self.cleaned_data["slug"].lower()
        if not re.match(SLUG_PATTERN, slug):
            raise forms.ValidationError(
                "Start with a letter or digit, then use only lowercase letters, digits and dashes."
            )
        return slug


class BudgetForm(forms.Form):
    budget = MoneyField(
        required=False, min_value=0, help_text="Empty: no limit. Tasks that would go over it are refused."
    )
    budget_period = forms.ChoiceField(
        required=False, label="Resets", choices=[("", "never (for all time)"), *BudgetPeriod.choices]
    )

    def clean(self):
        data = super().clean()
        if data.get("budget_period") and data.get("budget") is None:
            self.add_error("budget_period", "Set a budget for it to reset, or choose never.")
        return data


INVITE_ROLES = [(Role.MEMBER, "member"), (Role.ADMIN, "admin")]


class InviteForm(forms.Form):
    role = forms.ChoiceField(choices=INVITE_ROLES, initial=Role.MEMBER)
    hours = forms.IntegerField(min_value=1, max_value=24 * 30, initial=72, label="Valid for (hours)")


class AddMemberForm(forms.Form):
    username = forms.CharField(max_length=150, label="Username", help_text="Someone with an account here.")
    role = forms.ChoiceField(choices=INVITE_ROLES, initial=Role.MEMBER)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "add_%s")  # the invite form on the same page has a `role` too
        super().__init__(*args, **kwargs)

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise forms.ValidationError(
                f"No account is named {username!r}: send them an invite link instead."
            )
        return user


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


TEAM_SWITCHED = (
    "You switched to {team} (in another tab) since this page was shown, so nothing was changed. "
    "Open the team page again to work on {team}."
)


def team_required(view):
    """A signed-in person working in a team (else to the list of their teams). A change posted
    from a page of another team (the session switched in another tab since; the page's forms say
    which team they were shown for, `workspace`) changes nothing: it would land on this one."""

    @person_required
    @never_cache
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        team = request.caller.team
        if team is None:
            return redirect("team")
        shown_for = request.POST.get("workspace") if request.method == "POST" else None
        if shown_for is not None and shown_for != str(team.pk):
            return access_ended(request, TEAM_SWITCHED.format(team=team.name), status=409)
        return view(request, *args, **kwargs)

    return wrapper


def manager_required(view):
    """Owners and admins of the team worked in; anyone else is refused (403) and told why."""

    @team_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.caller.manages_workspace:
            return access_ended(request, ONLY_MANAGERS)
        return view(request, *args, **kwargs)

    return wrapper


# --- The switcher and the list of one's teams ---------------------------------------------------------


@person_required
@require_POST
def switch(request: HttpRequest) -> HttpResponse:
    """Work in the team named by `team` (its slug; empty: the personal workspace), then go back to
    the page the switcher was on, unless it showed one task (which belongs to the other workspace)."""
    slug = request.POST.get("team", "")
    if slug:
        membership = next((m for m in teams_of(request.user.pk) if m.team.slug == slug), None)
        if membership is None:
            raise Http404("You are not a member of that team.")
        switch_workspace(request, membership.team_id)
    else:
        switch_workspace(request, None)
    return redirect(landing_page(request.POST.get("next", "")))


def _teams_page(request: HttpRequest, form: NewTeamForm | None = None, status: int = 200) -> HttpResponse:
    context = {"memberships": teams_of(request.user.pk), "team_form": form or NewTeamForm(), "nav": "team"}
    return render(request, "web/teams.html", context, status=status)


@person_required
@never_cache
@require_POST
def new_team(request: HttpRequest) -> HttpResponse:
    form = NewTeamForm(request.POST)
    if form.is_valid():
        try:
            team = create_team(
                form.cleaned_data["slug"], request.user, form.cleaned_data["name"], by=by_person(request)
            )
        except TeamError as exc:
            form.add_error("slug", str(exc))
        else:
            switch_workspace(request, team.pk)
            return redirect("team")
    return _teams_page(request, form, status=422)


# --- The team page ------------------------------------------------------------------------------------


def _member_rows(team) -> list[dict]:
    rows = []
    for membership in Membership.objects.filter(team=team).select_related("user").order_by("user__username"):
        tasks = Task.objects.filter(team=team, owner_id=membership.user_id)
        spent = (
            committed_spend(in_period(tasks, membership.budget_period))
            if membership.budget is not None
            else None
        )
        rows.append({"membership": membership, "spent": spent})
    return rows


def _team_context(request: HttpRequest, **extra) -> dict:
    caller = request.caller
    team = caller.team
    context = {
        "team": team,
        "role": caller.role,
        "manages": caller.manages_workspace,
        "is_owner": caller.role == Role.OWNER,
        "members": (members := _member_rows(team)),
        "sole_owner": sum(row["membership"].role == Role.OWNER for row in members) == 1,
        "credential": stored_upstream_key(None, team.pk),
        "nav": "team",
    }
    if caller.manages_workspace:
        spent = committed_spend(in_period(Task.objects.filter(team=team), team.budget_period))
        context.update(
            team_spent=spent,
            invites=Invite.objects.filter(
                team=team, used_at=None, revoked_at=None, expires_at__gt=timezone.now()
            ),
            invite_form=InviteForm(),
            add_form=AddMemberForm(),
            budget_form=BudgetForm(initial={"budget": team.budget, "budget_period": team.budget_period}),
            upstream_form=UpstreamKeyForm(),
            roles=Role.choices,
            periods=BudgetPeriod.choices,
            audit_entries=AuditEntry.objects.filter(team=team).select_related("actor")[:AUDIT_SHOWN],
        )
    return {**context, **extra}


NEW_INVITE_SESSION_KEY = "new_invite"


def _team_page(request: HttpRequest, status: int = 200, **extra) -> HttpResponse:
    if new_invite := request.session.pop(NEW_INVITE_SESSION_KEY, None):
        extra.update(new_invite_link=new_invite["link"], new_invite_role=new_invite["role"])
    return render(request, "web/team.html", _team_context(request, **extra), status=status)


@person_required
@never_cache
@require_GET
def teams_page(request: HttpRequest) -> HttpResponse:
    """The person's teams, and a new one, from whichever workspace."""
    return _teams_page(request)


@person_required
@never_cache
@require_GET
def team_page(request: HttpRequest) -> HttpResponse:
    """The team worked in, or in the personal workspace the list of one's teams and a new one."""
    if request.caller.team is None:
        return _teams_page(request)
    return _team_page(request)


def _member(request: HttpRequest, user_id: int) -> Membership:
    membership = (
        Membership.objects.filter(team_id=request.caller.team_id, user_id=user_id)
        .select_related("user", "team")
        .first()
    )
    if membership is None:
        raise Http404("No such member.")
    return membership


@manager_required
@require_POST
def add(request: HttpRequest) -> HttpResponse:
    form = AddMemberForm(request.POST)
    if form.is_valid():
        user, role = form.cleaned_data["username"], form.cleaned_data["role"]
        if Membership.objects.filter(team_id=request.caller.team_id, user=user).exists():
            form.add_error("username", f"{user.get_username()} is in the team already.")
        elif refused := role_change_refused(request.caller.role, None, role):
            form.add_error("role", refused)
        else:
            add_member(request.caller.team, user, role, by=by_person(request))
            return redirect(reverse("team") + "#members")
    return _team_page(request, status=422, add_form=form)


@team_required
@require_POST
def member_role(request: HttpRequest, user_id: int) -> HttpResponse:
    membership = _member(request, user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return _team_page(request, status=422, member_problem=(user_id, "Choose owner, admin or member."))
    role = form.cleaned_data["role"]
    if refused := role_change_refused(request.caller.role, membership.role, role):
        return _team_page(request, status=403, member_problem=(user_id, refused))
    try:
        add_member(membership.team, membership.user, role, by=by_person(request))
    except TeamError as exc:
        return _team_page(request, status=409, member_problem=(user_id, str(exc)))
    return redirect(reverse("team") + "#members")


@team_required
@require_POST
def member_remove(request: HttpRequest, user_id: int) -> HttpResponse:
    """Take someone out of the team (owners and admins), or leave it oneself (anyone but its last
    owner). Their next request reaches none of its tasks."""
    membership = _member(request, user_id)
    leaving = membership.user_id == request.user.pk
    if not leaving and (refused := role_change_refused(request.caller.role, membership.role, None)):
        return _team_page(request, status=403, member_problem=(user_id, refused))
    try:
        remove_member(membership.team, membership.user, by=by_person(request))
    except TeamError as exc:
        return _team_page(request, status=409, member_problem=(user_id, str(exc)))
    if leaving:
        switch_workspace(request, None)
        messages.success(request, f"You have left {membership.team.name}.")
        return redirect("teams")
    return redirect(reverse("team") + "#members")


@manager_required
@require_POST
def member_budget(request: HttpRequest, user_id: int) -> HttpResponse:
    membership = _member(request, user_id)
    # Only owners touch owners: an owner's budget too (an admin's 0 would stop them spending).
    if refused := role_change_refused(request.caller.role, membership.role, membership.role):
        return _team_page(request, status=403, member_problem=(user_id, refused))
    form = BudgetForm(request.POST)
    if not form.is_valid():
        problem = " ".join(e for errors in form.errors.values() for e in errors)
        return _team_page(request, status=422, member_problem=(user_id, problem))
    data = form.cleaned_data
    set_member_budget(membership, data["budget"], data["budget_period"], by=by_person(request))
    return redirect(reverse("team") + "#members")


@manager_required
@require_POST
def team_budget(request: HttpRequest) -> HttpResponse:
    form = BudgetForm(request.POST)
    if not form.is_valid():
        return _team_page(request, status=422, budget_form=form)
    data = form.cleaned_data
    set_team_budget(request.caller.team, data["budget"], data["budget_period"], by=by_person(request))
    return redirect(reverse("team") + "#team-budget")


@manager_required
@require_POST
def invite_create(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _team_page(request, status=422, invite_form=form)
    issued = create_invite(
        request.caller.team, form.cleaned_data["role"], form.cleaned_data["hours"], by=by_person(request)
    )
    # Shown once, on the page the redirect opens (a reload there makes no second invite).
    request.session[NEW_INVITE_SESSION_KEY] = {
        "link": request.build_absolute_uri(reverse("invite", args=[issued.token])),
        "role": issued.invite.role,
    }
    return redirect(reverse("team") + "#invites")


@manager_required
@require_POST
def invite_revoke(request: HttpRequest, invite_id: int) -> HttpResponse:
    invite = (
        Invite.objects.filter(pk=invite_id, team_id=request.caller.team_id).select_related("team").first()
    )
    if invite is None:
        raise Http404("No such invite.")
    revoke_invite(invite, by=by_person(request))
    return redirect(reverse("team") + "#invites")


@manager_required
@require_GET
def team_audit_csv(request: HttpRequest) -> HttpResponse:
    entries = AuditEntry.objects.filter(team_id=request.caller.team_id).select_related("actor").iterator()
    return csv_response(f"audit-log-{request.caller.team.slug}.csv", audit.csv_rows(entries))


# --- The team's MindVideo key: stored by its admins, used for every member's tasks, read by nobody ----


@manager_required
@require_POST
def upstream_save(request: HttpRequest) -> HttpResponse:
    """As for one's own key: tested first, and only an accepted key replaces the old one."""
    form, result = upstream_key_posted(request, team_id=request.caller.team_id)
    status = 200 if result and result["ok"] else 422
    return _team_page(request, status=status, upstream_form=form, upstream_result=result)


@manager_required
@require_POST
def upstream_test(request: HttpRequest) -> HttpResponse:
    result = upstream_key_tested(None, request.caller.team_id)
    return _team_page(request, upstream_result=result)


@manager_required
@require_POST
def upstream_delete(request: HttpRequest) -> HttpResponse:
    delete_upstream_key(request.user, by=by_person(request), team_id=request.caller.team_id)
    return _team_page(request, upstream_result={"ok": True, "message": "The team's key is deleted."})


# --- Joining by invite ----------------------------------------------------------------------------------


def _invite_refused(request: HttpRequest, exc: TeamError) -> HttpResponse:
    context = {"message": str(exc), "heading": "Invite unavailable", "hint": ""}
    return render(request, "web/demo_refused.html", context, status=410)


@never_cache
@require_http_methods(["GET", "POST"])
def invite(request: HttpRequest, token: str) -> HttpResponse:
    """An invite link: someone signed in joins with one press; anyone else creates their account
    here (open even when PLAYGROUND_SIGNUP is off: the link is the permission) and is in the team.
    Only the POST joins, so a link previewed by a chat app is not used up."""
    try:
        pending = invite_for_token(token)
    except TeamError as exc:
        return _invite_refused(request, exc)
    signed_in = request.user.is_authenticated
    if signed_in and (member := Membership.objects.filter(team=pending.team, user=request.user).first()):
        context = {"invite": pending, "team": pending.team, "already": member}
        return render(request, "web/invite.html", context)
    form = None if signed_in else SignUpForm(request.POST or None, request=request)
    if request.method == "POST":
        try:
            if signed_in:
                membership = accept_invite(token, request.user, by=by_person(request))
            elif form.is_valid():
                with transaction.atomic():  # no account made for an invite that is used up meanwhile
                    user = form.save()
                    membership = accept_invite(token, user, by=audit.By(user, by_person(request).ip))
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            else:
                membership = None
        except TeamError as exc:
            return _invite_refused(request, exc)
        if membership is not None:
            switch_workspace(request, membership.team_id)
            messages.success(
                request,
                f"Welcome to {membership.team.name}. You are working in the team's workspace: what you "
                "make here the team sees, on its budget. The menu at the top switches to your own.",
            )
            return redirect("home")
    context = {"invite": pending, "team": pending.team, "form": form, "token": token}
    return render(
        request, "web/invite.html", context, status=422 if form is not None and form.errors else 200
    )
