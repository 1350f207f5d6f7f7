"""Output file URLs: absolute, stable between polls, and signed like a presigned bucket URL.

A token covers one file and one time window (PLAYGROUND_FILE_URL_WINDOW, a day by default) and is
accepted until PLAYGROUND_FILE_URL_TTL (a week) after its window began. Polling clients therefore
see the same URL all day, so conditional (ETag) polls keep working, and an unchanged MindVideo client
can download the file without sending its key.
"""

import time

from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils.crypto import constant_time_compare, salted_hmac

SALT = "playground.outputs"


def _signature(task_id: str, name: str, window: int, salt: str = SALT) -> str:
    return salted_hmac(salt, f"{task_id}/{name}:{window}", algorithm="sha256").hexdigest()[:32]


def token_window(now: float | None = None) -> int:
    """The start (Unix time) of the window whose tokens output URLs carry now."""
    size = settings.PLAYGROUND_FILE_URL_WINDOW
    return int((now if now is not None else time.time()) // size * size)


def file_token(task_id: str, name: str, now: float | None = None, *, salt: str = SALT) -> str:
    """The token of file `name` of `task_id` (or, with another `salt`, of any other kind of file:
    input files sign their id and name the same way)."""
    window = token_window(now)
    return f"{window}.{_signature(task_id, name, window, salt)}"


def token_is_valid(
    task_id: str, name: str, token: str, now: float | None = None, *, salt: str = SALT
) -> bool:
    window_text, _, signature = token.partition(".")
    if not window_text.isdigit():
        return False
    window = int(window_text)
    age = (now if now is not None else time.time()) - window
    if not 0 <= age <= settings.PLAYGROUND_FILE_URL_TTL:
        return False
    return constant_time_compare(signature, _signature(task_id, name, window, salt))


def public_base(request: HttpRequest | None) -> str:
    if settings.PLAYGROUND_PUBLIC_URL:
        return settings.PLAYGROUND_PUBLIC_URL
    return request.build_absolute_uri("/").rstrip("/") if request is not None else ""


def output_url(request: HttpRequest | None, task_id: str, stored_path: str) -> str:
    name = stored_path.rsplit("/", 1)[-1]
    path = reverse("task-file", args=[task_id, name])
    return f"{public_base(request)}{path}?token={file_token(task_id, name)}"


def present_output(request: HttpRequest | None, task_id: str, output: dict | None) -> dict | None:
    """The stored output with each file's storage path replaced by its public URL."""
    if not output:
        return None
    presented = {}
    for key, items in output.items():
        presented[key] = [
            {
                "url": output_url(request, task_id, item["file"]),
                **{k: v for k, v in item.items() if k not in ("file", "bytes")},
            }
            for item in items
        ]
    return presented
