"""Fixed-window rate limits, counted where every process and host sees the same count: by default
in the database (`RateCounter`), or in the cache when CACHE_URL names one with counters of its own
(Redis, memcached: see the README). Each hit is counted exactly once, also when many come at once."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core.cache import BaseCache, caches
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import F

from .models import RateCounter

# A counter row whose window ended this long ago is deleted when a new scope starts counting.
STALE_AFTER = timedelta(days=1)


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
    ends_at = (window + 1) * limit.seconds
    cache = caches["default"]
    if type(cache).incr is BaseCache.incr:
        # The database cache's incr() is a read then a write, which loses concurrent hits.
        hits = count_in_database(scope, window, ends_at)
    else:
        hits = count_in_cache(cache, f"ratelimit:{scope}:{window}", int(ends_at - now) + 1)
    if hits <= limit.requests:
        return None
    return max(1, int(ends_at - now) + 1)


def count_in_database(scope: str, window: int, ends_at: float) -> int:
    """This hit's number in `scope`'s `window`. The UPDATE that counts it locks the row (PostgreSQL;
    SQLite's writers take turns), so the read after it sees every hit before this one."""
    scope = scope[: RateCounter._meta.get_field("scope").max_length]
    ends = datetime.fromtimestamp(ends_at, UTC)
    while True:
        with transaction.atomic():
            counted = RateCounter.objects.filter(scope=scope, window=window).update(hits=F("hits") + 1)
            mine = RateCounter.objects.filter(scope=scope)
            if not counted:  # a new window: the first hit to get here starts it again at 1
                counted = mine.filter(window__lt=window).update(window=window, hits=1, ends_at=ends)
            if not counted:  # a late hit of an earlier window (a host whose clock is behind)
                counted = mine.filter(window__gt=window).update(hits=F("hits") + 1)
            if counted:
                return RateCounter.objects.values_list("hits", flat=True).get(scope=scope)
        try:  # the scope's first hit (or the first in a long time)
            with transaction.atomic():
                RateCounter.objects.filter(ends_at__lt=datetime.now(UTC) - STALE_AFTER).delete()
                RateCounter.objects.create(scope=scope, window=window, hits=1, ends_at=ends)
            return 1
        except IntegrityError:  # another hit started it first: count this one on it
            continue


def count_in_cache(cache: BaseCache, key: str, timeout: int) -> int:
    try:  # atomic where the cache has counters (Redis, memcached, memory)
        return cache.incr(key)
    except ValueError:  # the window's first hit
        return 1 if cache.add(key, 1, timeout=timeout) else cache.incr(key)
