"""The one JSON error shape of `/api/v1`:

{"error": {"code": "...", "message": "...", "field": "input.size" | null, "request_id": "req_…",
           "errors": [{"field", "message", "code"}, ...]}}
"""

from collections.abc import Iterable

from django.http import HttpRequest, JsonResponse
from django.views import defaults

from playground.catalog.validation import FieldError

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


def handler404(request, exception=None):
    if request.path.startswith(API_PREFIX):
        return error_response(request, ApiError(404, "not_found", "No such resource."))
    return defaults.page_not_found(request, exception)


def handler500(request):
    if request.path.startswith(API_PREFIX):
        return error_response(
            request, ApiError(500, "server_error", "Something went wrong on our side; it has been logged.")
        )
    return defaults.server_error(request)


def handler400(request, exception=None):
    if request.path.startswith(API_PREFIX):
        return error_response(request, ApiError(400, "bad_request", "The request could not be read."))
    return defaults.bad_request(request, exception)
