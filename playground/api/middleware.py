import re
import secrets

INCOMING_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


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
