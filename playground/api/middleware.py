import re
import secrets
import tempfile

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.urls import get_resolver
from django.utils.module_loading import import_string
from django.views import defaults

from playground.catalog.text import text_problem

from .errors import API_PREFIX, ApiError, error_response

INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
READ_CHUNK = 64 * 1024


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


class RequestIdMiddleware:
    """Give every request an id (a well-formed incoming X-Request-Id is kept) and echo it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-Id", "")
        request.request_id = incoming if INCOMING_ID.match(incoming) else new_request_id()
        response = self.get_response(request)
        response["X-Request-Id"] = request.request_id
        return response


class UrlTextMiddleware:
    """Refuse (400) a URL whose path or query holds what is not text (`catalog.text`): a NUL or
    another control character. No link of ours has one, and PostgreSQL cannot even compare text
    holding a NUL, so past here every id, filter and page number is safe to look up."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        where = "path" if text_problem(request.path) else None
        for name, values in request.GET.lists():
            if where is None and (text_problem(name) or any(text_problem(value) for value in values)):
                where = name
        if where is None:
            return self.get_response(request)
        if request.path.startswith(API_PREFIX):
            message = f"The {'URL path' if where == 'path' else where} holds a control character."
            return error_response(request, ApiError(400, "invalid_query", message, where))
        return defaults.bad_request(request, None)


class BodyLimitMiddleware:
    """Refuse a request body over PLAYGROUND_MAX_BODY_BYTES with 413 before any of it is read.

    A body that announces its length is judged by its Content-Length alone, before Django parses
    or spools anything: without this, a multipart upload's files would be written to disk in full
    and only then found too large. A chunked body (no length) is read up to the limit into a
    spooled temporary file and refused as soon as it goes over; one under the limit is handed on
    with its length, as if it had announced it. Last in MIDDLEWARE, so the refusal knows the
    person (its page shows their menu), and still before any view or CSRF check reads the body.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.PLAYGROUND_MAX_BODY_BYTES
        declared = request.META.get("CONTENT_LENGTH") or ""
        if declared.strip().isdigit():
            if int(declared) > limit:
                return body_too_large(request, int(declared), limit)
        elif is_chunked(request):
            size = buffer_chunked_body(request, limit)
            if size > limit:
                return body_too_large(request, None, limit)
        return self.get_response(request)


def is_chunked(request: HttpRequest) -> bool:
    """A WSGI request whose body comes chunked, without a length: the server (gunicorn) passes
    it on and marks the input as ending by itself (`wsgi.input_terminated`)."""
    return (
        "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        and bool(request.META.get("wsgi.input_terminated"))
        and "wsgi.input" in request.META
    )


def buffer_chunked_body(request: HttpRequest, limit: int) -> int:
    """Read a chunked body, stopping one chunk past `limit`; under it, make it the request's body
    (Django reads nothing of a body without a Content-Length). Returns the bytes read."""
    source = request.META["wsgi.input"]
    spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 (it becomes the request body)
        max_size=settings.FILE_UPLOAD_MAX_MEMORY_SIZE, dir=settings.FILE_UPLOAD_TEMP_DIR
    )
    size = 0
    while chunk := source.read(READ_CHUNK):
        size += len(chunk)
        if size > limit:
            spool.close()
            return size
        spool.write(chunk)
    spool.seek(0)
    request._stream = LimitedStream(spool, size)
    request.META["CONTENT_LENGTH"] = str(size)
    return size


def megabytes(size: int) -> str:
    """0.1 MB, 2.5 MB, 32 MB, 200 MB (as app.js writes them too)."""
    value = size / (1024 * 1024)
    return f"{value:.1f} MB" if value < 10 else f"{value:.0f} MB"


def body_too_large(request: HttpRequest, size: int | None, limit: int) -> HttpResponse:
    """The 413: the API's JSON error, a message for the run form (htmx), else a page."""
    what = f"This request is {megabytes(size)}" if size is not None else "This request is larger than that"
    message = f"{what}; at most {megabytes(limit)} can be sent at once, files included."
    if request.path.startswith(API_PREFIX):
        return error_response(request, ApiError(413, "body_too_large", message))
    context = {"message": message, "limit": megabytes(limit)}
    if request.headers.get("HX-Request"):
        return render(request, "413.html#refusal", context, status=413)
    return render(request, "413.html", context, status=413)


class ApiPathMiddleware:
    """`/api/v1` requests leave MIDDLEWARE here and take a shorter way to their view:
    PLAYGROUND_API_MIDDLEWARE, then the view itself.

    What follows in MIDDLEWARE serves browsers: static files, the session, CSRF, the signed-in user,
    messages, htmx. An API request is a Bearer key and JSON; it uses none of them, and running them
    all cost about a third of an API poll. The API's own chain keeps every header a response had
    (CommonMiddleware, X-Frame-Options, the CSP) and the body limit. Its middleware may only wrap
    the request (`__call__`, or `process_request`/`process_response`): hooks that Django calls from
    inside its handler (`process_view`, `process_exception`, `process_template_response`) are not
    run on this path, so such a middleware is refused when the chain is built.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.api_response = api_chain(settings.PLAYGROUND_API_MIDDLEWARE)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(API_PREFIX):
            return self.api_response(request)
        return self.get_response(request)


def api_chain(paths: list[str]):
    """`paths` (middleware import paths, outermost first) around `api_view`, each wrapped as Django
    wraps its own (`convert_exception_to_response`), so an exception becomes the API's error answer
    at the same place and still passes through the middleware outside it."""
    handler = convert_exception_to_response(api_view)
    for path in reversed(paths):
        middleware = import_string(path)(handler)
        for hook in ("process_view", "process_exception", "process_template_response"):
            if hasattr(middleware, hook):
                raise ImproperlyConfigured(f"PLAYGROUND_API_MIDDLEWARE: {path} needs {hook}, not run here.")
        handler = convert_exception_to_response(middleware)
    return handler


def api_view(request: HttpRequest) -> HttpResponse:
    """What Django's handler does between the middleware and the view (`_get_response`), for
    views that are neither async nor atomic nor deferred-rendering, as every `/api/v1` view is."""
    resolver = get_resolver(getattr(request, "urlconf", None))
    match = request.resolver_match = resolver.resolve(request.path_info)
    response = match.func(request, *match.args, **match.kwargs)
    if not isinstance(response, HttpResponseBase):
        raise ValueError(f"The view {match.view_name} returned {type(response).__name__}, not a response.")
    return response
