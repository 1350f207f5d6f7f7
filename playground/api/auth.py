from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from playground.access.callers import RateLimited, key_caller
from playground.keys.services import KeyRejected

from .errors import ApiError, error_response


def api_endpoint(*methods: str) -> Callable:
    """An `/api/v1` view: allowed methods, Bearer key authentication, and every ApiError rendered
    in the one JSON error shape. The view sees `request.caller` (`access.callers.key_caller`)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise ApiError(
                        405,
                        "method_not_allowed",
                        f"Use {' or '.join(methods)} here.",
                        headers={"Allow": ", ".join(methods)},
                    )
                try:
                    request.caller = key_caller(request)
                except KeyRejected as exc:
                    raise ApiError(
                        401, exc.code, exc.message, headers={"WWW-Authenticate": 'Bearer realm="api"'}
                    ) from exc
                except RateLimited as exc:
                    raise ApiError(
                        429, "rate_limited", str(exc), headers={"Retry-After": str(exc.wait)}
                    ) from exc
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return error_response(request, exc)

        return wrapper

    return decorate
