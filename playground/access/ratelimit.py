"""Fixed-window rate limits counted in Django's cache: by default the database cache, so a limit
holds across every process and host on the same database (see CACHE_URL in the README)."""

import time
from dataclasses import dataclass

from django.core.cache import BaseCache, caches
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
    cache = caches["default"]
    key = f"ratelimit:{scope}:{window}"
    ends_in = int((window + 1) * limit.seconds - now) + 1
    if type(cache).incr is BaseCache.incr:
        # No counter of its own (the database cache): its incr() is this same read and write,
        # but would also move the expiry to the cache's default, cutting short a longer window.
        hits = cache.get(key, 0) + 1
        cache.set(key, hits, timeout=ends_in)
    else:
        try:  # atomic where the cache has counters (Redis, memcached, memory)
            hits = cache.incr(key)
        except ValueError:  # the window's first hit
            hits = 1 if cache.add(key, 1, timeout=ends_in) else cache.incr(key)
    if hits <= limit.requests:
        return None
    return max(1, ends_in)
