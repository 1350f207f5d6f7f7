"""What every page's header needs."""

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from playground.access.callers import WORKSPACE_SESSION_KEY
from playground.teams.services import teams_of


def workspaces(request: HttpRequest) -> dict:
    """The teams of the signed-in person, for the header's workspace switcher, and the workspace
    the session works in. Both lazy: a status poll's partial shows neither, and must not load the
    account (`access.callers.session_caller(lean=True)`)."""

    def teams():
        user = getattr(request, "user", None)
        return teams_of(user.pk) if user is not None and user.is_authenticated else []

    def current():
        session = getattr(request, "session", None)
        return session.get(WORKSPACE_SESSION_KEY) if session is not None else None

    return {"workspaces": SimpleLazyObject(teams), "current_workspace": SimpleLazyObject(current)}
