"""The one JSON error shape of `/api/v1`:

{"error": {"code": "...", "message": "...", "field": "input.size" | null, "request_id": "req_…",
           "errors": [{"field", "message", "code"}, ...]}}
"""

import sys
from collections.abc import Iterable

from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.views import defaults

from playground.catalog.validation import FieldError
from playground.storage import BUCKET_ERRORS

API_PREFIX = "/api/"


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        errors: Iterable[FieldError] = (),
        headers: dict | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.errors = list(errors)
        self.headers = headers or {}


def error_response(request: HttpRequest, error: ApiError) -> JsonResponse:
    body = {
        "code": error.code,
        "message": error.message,
        "field": error.field,
        "request_id": getattr(request, "request_id", None),
    }
    if error.errors:
        body["errors"] = [{"field": e.field, "message": e.message, "code": e.code} for e in error.errors]
    response = JsonResponse({"error": body}, status=error.status)
    for name, value in error.headers.items():
        response[name] = value
    return response


# The project's error handlers (playground/urls.py): the JSON shape under /api/, the styled pages
# of templates/ (400.html, 403.html, 403_csrf.html, 404.html, 500.html) everywhere else.


def handler400(request, exception=None):
    if request.path.startswith(API_PREFIX):
        return error_response(request, ApiError(400, "bad_request", "The request could not be read."))
    return defaults.bad_request(request, exception)


def handler403(request, exception=None):
    if request.path.startswith(API_PREFIX):
        return error_response(request, ApiError(403, "forbidden", "This is not allowed."))
    return defaults.permission_denied(request, exception)


def handler404(request, exception=None):
    if request.path.startswith(API_PREFIX):
        return error_response(request, ApiError(404, "not_found", "No such resource."))
    return defaults.page_not_found(request, exception)


def handler500(request):
    """Rendered without a RequestContext (no user, no session, no query): whatever failed may fail
    again. The request id is all the page shows of the request, for a bug report. A shared part
    that is down (the database restarting, a bucket that does not answer) is a 503 saying which,
    to try again shortly: nothing is wrong with the request."""
    if (down := unavailable_part(sys.exception())) is not None:
        return unavailable_response(request, down)
    if request.path.startswith(API_PREFIX):
        return error_response(
            request, ApiError(500, "server_error", "Something went wrong on our side; it has been logged.")
        )
    page = loader.get_template("500.html").render({"request_id": getattr(request, "request_id", "")})
    return HttpResponseServerError(page)


UNAVAILABLE = {
    "database": "The database is not answering (it may be restarting). Try again in a few seconds.",
    "file_store": "The file store is not answering. Try again in a few seconds.",
}
RETRY_AFTER_SECONDS = 5


def unavailable_part(exc: BaseException | None) -> str | None:
    """Which shared part `exc` says is down: "database", "file_store", or None (a bug)."""
    if isinstance(exc, OperationalError | InterfaceError) and not database_answers():
        return "database"
    if isinstance(exc, BUCKET_ERRORS):
        return "file_store"
    return None


def database_answers() -> bool:
    """Whether this request's database connection opened and still answers. A query the database
    refused leaves it so: a bug, not an outage, even where the driver calls it an OperationalError
    (SQLite does for a table that is not there)."""
    return connection.connection is not None and connection.is_usable()


def unavailable_response(request: HttpRequest, part: str) -> HttpResponse:
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if request.path.startswith(API_PREFIX):
        return error_response(
            request, ApiError(503, f"{part}_unavailable", UNAVAILABLE[part], headers=headers)
        )
    # An htmx submit gets the message alone, shown above the form it came from (static/js/app.js).
    htmx = bool(request.headers.get("HX-Request"))
    sent = request.method not in ("GET", "HEAD")
    context = {
        "message": UNAVAILABLE[part],
        "request_id": getattr(request, "request_id", ""),
        "htmx": htmx,
        "sent": sent,  # only then was something not saved
        "retry_url": "" if sent else request.get_full_path(),
        "retry_after": RETRY_AFTER_SECONDS,
    }
    page = loader.get_template("503.html#refusal" if htmx else "503.html").render(context)
    return HttpResponse(page, status=503, headers=headers)


def csrf_failure(request, reason=""):
    """CSRF_FAILURE_VIEW: a form sent without a valid token (a stale tab, cookies blocked)."""
    if request.path.startswith(API_PREFIX):
        return error_response(request, ApiError(403, "csrf_failed", "The request was refused (CSRF check)."))
    return render(request, "403_csrf.html", status=403)
