"""Fixed-window rate limits counted in Django's cache (see CACHE_URL in the README)."""

import time
from dataclasses import dataclass

from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Limit:
    requests: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> "Limit":
        """`"600/60"`: 600 requests per 60 seconds. `"0/60"` or empty turns the limit off."""
        try:
            requests, seconds = (int(part) for part in (text or "0/60").split("/"))
        except ValueError as exc:
            raise ImproperlyConfigured(f"A rate limit must look like 600/60, not {text!r}.") from exc
        return cls(requests, max(seconds, 1))


def over_limit(scope: str, limit: Limit, now: float | None = None) -> int | None:
    """Count one hit for `scope`; None while under the limit, else the seconds to wait."""
    if limit.requests <= 0:
        return None
    now = time.time() if now is None else now
    window = int(now // limit.seconds)
    key = f"ratelimit:{scope}:{window}"
    cache.add(key, 0, timeout=limit.seconds + 1)
    try:
        hits = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=limit.seconds + 1)
        hits = 1
    if hits <= limit.requests:
        return None
    return max(1, int((window + 1) * limit.seconds - now) + 1)
