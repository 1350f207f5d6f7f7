from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from playground.access.addresses import client_address
from playground.access.ratelimit import Limit, over_limit
from playground.keys.services import KeyRejected, authenticate_key

from .errors import ApiError, error_response


def bearer_token(request: HttpRequest) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def api_endpoint(*methods: str) -> Callable:
    """An `/api/v1` view: allowed methods, Bearer key authentication, and every ApiError rendered
    in the one JSON error shape. The view sees `request.api_key` and `request.owner`."""

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
                    key = authenticate_key(bearer_token(request), ip=client_address(request))
                except KeyRejected as exc:
                    raise ApiError(
                        401, exc.code, exc.message, headers={"WWW-Authenticate": 'Bearer realm="api"'}
                    ) from exc
                wait = over_limit(f"key:{key.pk}", Limit.parse(settings.PLAYGROUND_API_RATE_LIMIT))
                if wait is not None:
                    raise ApiError(
                        429,
                        "rate_limited",
                        f"Too many requests with this key; retry in {wait} s.",
                        headers={"Retry-After": str(wait)},
                    )
                request.api_key, request.owner = key, key.user
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return error_response(request, exc)

        return wrapper

    return decorate
