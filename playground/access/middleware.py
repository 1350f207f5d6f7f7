from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from .addresses import FORWARDED_HEADERS, is_trusted_proxy, parse_address


class TrustedProxyMiddleware:
    """`X-Forwarded-For`, `-Proto` and `-Host` count only from a trusted proxy
    (PLAYGROUND_TRUSTED_PROXIES): from anyone else they are dropped before any other code reads
    them, so a client cannot claim another address, HTTPS (SECURE_PROXY_SSL_HEADER) or another
    host (USE_X_FORWARDED_HOST) by sending them itself. First in MIDDLEWARE. (gunicorn believes
    none of them itself: playground/gunicorn_conf.py.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if any(header in request.META for header in FORWARDED_HEADERS):
            peer = parse_address(request.META.get("REMOTE_ADDR") or "")
            if peer is None or not is_trusted_proxy(peer):
                for header in FORWARDED_HEADERS:
                    request.META.pop(header, None)
        return self.get_response(request)


class SignInThrottleMiddleware:
    """A sign-in or sign-up form refused by the throttle (`signin.refuse`) is answered 429 with
    `Retry-After`: the page itself, with the message beside the form, is the view's own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        refused = getattr(request, "too_many_attempts", None)
        if refused is not None and response.status_code == 200:
            response.status_code = 429
            response["Retry-After"] = str(refused.seconds)
        return response
