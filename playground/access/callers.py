"""Who is asking, and what they may reach: the one rule for every page, poll, file and API call.

A request comes from one of three callers, each made here and nowhere else:

- a **signed-in person** (`session_caller`): their session names their account, and the workspace
  they work in: their personal one, or a team they are a member of (`switch_workspace`). The
  membership is read again on every request, so a person removed from a team reaches none of its
  tasks from their next request on;
- a **guest on a demo pass** (`session_caller`): their session names the pass and their own guest
  id, given when they entered (`enter_pass`). A guest's tasks belong to the pass's owner, marked
  with the pass and the guest, so every guest on one link sees only their own work while the owner
  sees all of it in their history;
- an **API key** (`key_caller`): the Bearer secret names the key, and the key its account. A key
  issued for a team acts for the team (`team_id`): it reaches every task of the team, whoever ran
  it, and its own tasks are the team's; any other caller is in its personal workspace and reaches
  no team's tasks.

`Caller.task_scope()` is the set of tasks the caller may see, poll, cancel, download and re-run;
anything outside it answers exactly as a task that does not exist (404). Files ask the same
question of one task they already loaded (`Caller.sees`).
"""

import secrets
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.http import HttpRequest
from django.utils.crypto import constant_time_compare

from playground.catalog.models import CatalogEntry
from playground.keys.models import ApiKey, DemoPass
from playground.keys.services import KeyRejected, authenticate_key
from playground.teams.models import MANAGERS, Membership, Team

from .addresses import client_address
from .passes import PassRefused, usable_pass
from .ratelimit import api_key_limits, over_limit

# What a guest's session holds: the pass they entered, and their own id on it.
DEMO_SESSION_KEY = "demo_pass"
GUEST_SESSION_KEY = "demo_guest"
# The team a signed-in person works in (its id); absent: their personal workspace.
WORKSPACE_SESSION_KEY = "workspace"

SIGNED_OUT = "Your session has ended. Please sign in again."
NO_LONGER_A_MEMBER = "You are no longer a member of {team}. You are back in your personal workspace."
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


class AccessEnded(Exception):
    """The caller may no longer reach anything: `sign_in` when signing in again is the way back;
    `retry` when the same page asked again works (the session has moved to another workspace)."""

    def __init__(self, message: str, *, sign_in: bool = False, retry: bool = False) -> None:
        super().__init__(message)
        self.message, self.sign_in, self.retry = message, sign_in, retry


class RateLimited(Exception):
    """Too many requests with one key: `wait` seconds until the next one counts."""

    def __init__(self, wait: int) -> None:
        super().__init__(f"Too many requests with this key; retry in {wait} s.")
        self.wait = wait


@dataclass(frozen=True)
class Caller:
    """The caller of one request. `owner` is the account that owns (and pays for) what the caller
    makes: the person, the pass's owner for a guest, the key's account. It may be the request's
    lazy user, so reading `owner_id` never loads a row."""

    owner_id: Any
    owner: AbstractBaseUser
    demo_pass: DemoPass | None = None
    guest: str = ""
    api_key: ApiKey | None = None
    team_id: Any = None  # the team workspace the caller acts in; None: their personal one
    team: Team | None = None  # for a person in a team workspace: the team, and their role in it
    role: str = ""
    # False only for `session_caller(lean=True)`: the session is not yet checked against the
    # account's row, which the view loads with the task and hands to `confirm_session`.
    confirmed: bool = True

    @classmethod
    def person(cls, user: AbstractBaseUser) -> "Caller":
        """A signed-in person, for pages only people reach (history, compare, account pages)."""
        return cls(user.pk, user)

    @property
    def is_guest(self) -> bool:
        return self.demo_pass is not None

    @property
    def manages_workspace(self) -> bool:
        """Whether the caller may change the workspace's members, keys, passes, upstream key and
        budgets: anyone in their personal workspace, an owner or admin in a team's."""
        return self.demo_pass is None and (self.team_id is None or self.role in MANAGERS)

    def scope_fields(self) -> dict[str, Any]:
        """The tasks this caller may reach: the values their columns must have. The one rule for
        every view; `task_scope` is its filter, `presenters.task_stamp` its raw SQL."""
        if self.demo_pass is not None:
            return {"demo_pass_id": self.demo_pass.pk, "guest": self.guest}
        if self.team_id is not None:
            return {"team_id": self.team_id}
        return {"owner_id": self.owner_id, "team_id": None}

    def task_scope(self, prefix: str = "") -> Q:
        """`scope_fields` as a filter (`prefix` for a query through a relation, e.g. "task__")."""
        return Q(**{prefix + name: value for name, value in self.scope_fields().items()})

    def sees(self, task) -> bool:
        """`task_scope` for one task already loaded (with its owner_id, demo_pass_id and guest)."""
        return all(getattr(task, name) == value for name, value in self.scope_fields().items())

    def key_scope(self) -> Q:
        """The API keys this caller may see and change on the keys page: in their personal
        workspace their own personal keys; in a team's, the team's keys, all of them for its
        owners and admins, else the ones issued to them."""
        if self.team_id is None:
            return Q(user_id=self.owner_id, team=None)
        if self.manages_workspace:
            return Q(team_id=self.team_id)
        return Q(team_id=self.team_id, user_id=self.owner_id)

    def owns_files_of(self, owner_id) -> bool:
        """Input files belong to an account; a guest owns none (their uploads are the pass
        owner's and reach them through signed references)."""
        return self.demo_pass is None and owner_id == self.owner_id

    def may_share(self) -> bool:
        """Whether this caller may make public share pages of the tasks in their scope: people
        and keys may; a guest only when their pass allows it."""
        return self.demo_pass is None or self.demo_pass.allow_sharing

    def allows(self, entry: CatalogEntry) -> bool:
        if self.api_key is not None and not self.api_key.allows_model(entry.slug):
            return False
        return self.demo_pass is None or entry.slug in self.demo_pass.model_slugs

    def pass_scope(self) -> Q:
        """The demo passes this caller may see and revoke: in their personal workspace their own;
        in a team's, the team's passes if they are one of its owners or admins; a guest or a key
        none."""
        if self.demo_pass is not None or self.api_key is not None:
            return Q(pk__in=[])
        if self.team_id is None:
            return Q(owner_id=self.owner_id, team=None)
        return Q(team_id=self.team_id) if self.manages_workspace else Q(pk__in=[])

    def audience_passes(self):
        """The demo passes whose guests' results this caller may show beside their own
        ("show audience results" in presentation mode): the passes they manage (`pass_scope`). A
        guest (even of that pass), a key or anyone else reaches none."""
        return DemoPass.objects.filter(self.pass_scope())

    def audience_scope(self, demo_pass: DemoPass) -> Q:
        """The tasks the guests of `demo_pass` (one of `audience_passes`) made: the part of this
        caller's scope that is that pass's."""
        return self.task_scope() & Q(demo_pass_id=demo_pass.pk)

    def entries(self):
        """The models this caller may run: all active ones, or the pass's, or the key's."""
        entries = CatalogEntry.objects.filter(is_active=True)
        if self.demo_pass is not None:
            entries = entries.filter(slug__in=self.demo_pass.model_slugs)
        if self.api_key is not None and self.api_key.allowed_models:
            entries = entries.filter(slug__in=self.api_key.allowed_models)
        return entries


# --- Sessions: people and guests ------------------------------------------------------------------


def session_caller(request: HttpRequest, *, lean: bool = False) -> Caller:
    """The signed-in person or the guest of this browser session, or AccessEnded saying why not
    (signed out, session expired, pass revoked or expired).

    `lean` is for the status poll, the request a person makes most: the account's row is not
    loaded here but by the view, joined to the task it reads anyway, and checked there with
    `confirm_session` (so a sign-out or password change still ends access at the next poll).

    A person working in a team (`switch_workspace`) is read with their membership, every request:
    one statement that also checks the session, lean or not (`_member_caller`)."""
    if WORKSPACE_SESSION_KEY in request.session:
        caller = _member_caller(request, request.session[WORKSPACE_SESSION_KEY])
        if caller is not None:
            return caller
    if lean and (user_id := _session_user_id(request)) is not None:
        return Caller(user_id, request.user, confirmed=False)
    if request.user.is_authenticated:
        return Caller.person(request.user)
    if DEMO_SESSION_KEY in request.session:
        try:
            demo_pass = usable_pass(request.session[DEMO_SESSION_KEY])
        except PassRefused as exc:
            raise AccessEnded(str(exc)) from exc
        guest = request.session.get(GUEST_SESSION_KEY) or _new_guest(request)
        # A team's pass: its guests' tasks are the team's (its budget, its MindVideo key).
        return Caller(demo_pass.owner_id, demo_pass.owner, demo_pass, guest, team_id=demo_pass.team_id)
    raise AccessEnded(SIGNED_OUT, sign_in=True)


def _member_caller(request: HttpRequest, team_id) -> Caller | None:
    """A signed-in person in the team workspace their session names: their membership and account
    in one statement, the session checked against that account (as Django's `get_user` would, which
    then needs no query of its own). Not a member (any more): AccessEnded, and the session is back
    in their personal workspace. None when nobody is signed in."""
    user_id = _session_user_id(request)
    if user_id is None and request.user.is_authenticated:  # signed in through another backend
        user_id = request.user.pk
    if user_id is None:
        return None
    membership = (
        Membership.objects.select_related("user", "team").filter(team_id=team_id, user_id=user_id).first()
    )
    if membership is None:
        # Back in their personal workspace at once: the poll that finds out says so (and stops),
        # the strip's other polls then find their team tasks out of reach and drop them, and a page
        # asked for again opens in the personal workspace.
        del request.session[WORKSPACE_SESSION_KEY]
        name = Team.objects.filter(pk=team_id).values_list("name", flat=True).first()
        raise AccessEnded(NO_LONGER_A_MEMBER.format(team=name or "that team"), retry=True)
    user = membership.user
    caller = Caller(user_id, user, team_id=membership.team_id, team=membership.team, role=membership.role)
    if _session_user_id(request) is not None:
        confirm_session(request, replace(caller, confirmed=False), user)
        request.user = user  # checked as `get_user` checks it: pages need not load the row again
    return caller


def switch_workspace(request: HttpRequest, team_id) -> None:
    """Work in team `team_id` (the caller checked the person is a member), or with None in their
    personal workspace, from the next request on."""
    if team_id is None:
        request.session.pop(WORKSPACE_SESSION_KEY, None)
    else:
        request.session[WORKSPACE_SESSION_KEY] = team_id


def _session_user_id(request: HttpRequest):
    """The account a session names, without loading it; None when there is none, or when its
    backend is not the model backend whose check `confirm_session` repeats."""
    session = request.session
    backend = session.get(BACKEND_SESSION_KEY)
    if backend != MODEL_BACKEND or backend not in settings.AUTHENTICATION_BACKENDS:
        return None
    try:
        return get_user_model()._meta.pk.to_python(session[SESSION_KEY])
    except (KeyError, ValueError, TypeError):
        return None


def confirm_session(request: HttpRequest, caller: Caller, owner: AbstractBaseUser) -> None:
    """For a lean caller, the check Django's `get_user` makes, on the account row the view loaded
    with the task (its `password` and `is_active`): the account is active and the session's hash
    matches its password (or a SECRET_KEY_FALLBACKS hash, then renewed). Otherwise the session
    ends, as Django ends it, and so does access."""
    if caller.confirmed:
        return
    if not owner.is_active:  # ModelBackend.get_user: no user, but the session is not flushed
        raise AccessEnded(SIGNED_OUT, sign_in=True)
    session_hash = request.session.get(HASH_SESSION_KEY) or ""
    current = owner.get_session_auth_hash()
    if session_hash:
        if constant_time_compare(session_hash, current):
            return
        if any(constant_time_compare(session_hash, h) for h in owner.get_session_auth_fallback_hash()):
            request.session.cycle_key()
            request.session[HASH_SESSION_KEY] = current
            return
    request.session.flush()
    raise AccessEnded(SIGNED_OUT, sign_in=True)


def enter_pass(request: HttpRequest, demo_pass: DemoPass) -> bool:
    """Make this browser a guest on `demo_pass`. The same browser entering the same pass again
    stays the same guest and finds its results again; a new guest gets a new session key too, so
    whoever knew the session's id before (a cookie planted or left on a shared machine) does not
    become this guest. The caller signs a signed-in person out first. True for a new guest."""
    if request.session.get(DEMO_SESSION_KEY) == demo_pass.public_id:
        return False
    request.session.cycle_key()
    request.session[DEMO_SESSION_KEY] = demo_pass.public_id
    _new_guest(request)
    return True


def current_pass_id(request: HttpRequest) -> str | None:
    """The public id of the pass this browser is a guest on, if any (it may have ended)."""
    return request.session.get(DEMO_SESSION_KEY)


def _new_guest(request: HttpRequest) -> str:
    guest = secrets.token_urlsafe(12)
    request.session[GUEST_SESSION_KEY] = guest
    return guest


# --- API keys -------------------------------------------------------------------------------------


def bearer_token(request: HttpRequest) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def key_caller(request: HttpRequest) -> Caller:
    """The caller of an API request: its key, checked (KeyRejected says why not) and counted
    against its rate limit (RateLimited): its own requests a minute, or PLAYGROUND_API_RATE_LIMIT."""
    key = authenticate_key(bearer_token(request), ip=client_address(request))
    for suffix, limit in api_key_limits(key.requests_per_minute):
        wait = over_limit(f"key:{key.pk}{suffix}", limit)
        if wait is not None:
            raise RateLimited(wait)
    return Caller(key.user_id, key.user, api_key=key, team_id=key.team_id)


def file_caller(request: HttpRequest) -> Caller | None:
    """Who asks for a file without a signed token: the session's person or guest, else the owner of
    a valid Bearer key, else nobody. Files are not rate-limited per key (pages load them by the
    dozen); a key that is not valid counts for nothing, and the session, if any, decides."""
    if (secret := bearer_token(request)) and not request.user.is_authenticated:
        try:
            key = authenticate_key(secret, ip=client_address(request))
        except KeyRejected:
            key = None
        if key is not None:
            return Caller(key.user_id, key.user, api_key=key, team_id=key.team_id)
    try:
        return session_caller(request)
    except AccessEnded:
        return None
