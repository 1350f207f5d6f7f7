"""Fixed-window rate limits, counted where every process and host sees the same count: by default
in the database (`RateCounter`), or in the cache when CACHE_URL names one with counters of its own
(Redis, memcached: see the README). Each hit is counted exactly once, also when many come at once.

A process does not go to the shared count for every hit of a large limit: it takes a **lease** of
several hits at once (`lease_size`, 1 for limits under 100 per window, at most 16), counted there in
one step, and spends them itself, so a busy API key costs the database one counting statement per
lease rather than one per request. Leases never let a scope past its limit (every hit leased is
counted before it is spent); hits leased by one process and left unspent when the window ends are
lost to the others, so with P processes a scope can be refused at most (P - 1) x (lease - 1) hits
before its limit: under 3% of it per extra process. Sign-in and sign-up limits are small, so their
hits are counted one by one, exactly.
"""

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
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


def api_key_limits(requests_per_minute: int | None) -> list[tuple[str, Limit]]:
    """The limits one API key counts against, each with the suffix of its count's scope: the key's
    own requests a minute when it has one, never looser than the server's PLAYGROUND_API_RATE_LIMIT,
    which applies to every other key (an owner cannot lift their keys past what the server allows
    one key; `api_rpm_ceiling`). A server window of whole minutes holds whole minutes of the key's
    (windows start on multiples of their length), so there the key's own count is the tighter one;
    a server window of, say, a second is counted too, or a key allowed 120 a minute by a server
    allowing 2 a second could send all 120 in one second."""
    server = Limit.parse(settings.PLAYGROUND_API_RATE_LIMIT)
    if not requests_per_minute:
        return [("", server)]
    ceiling = api_rpm_ceiling()
    if ceiling is not None and requests_per_minute > ceiling:
        return [("", server)]
    own = ("/min", Limit(requests_per_minute, 60))
    if server.requests > 0 and server.seconds % 60:
        return [own, ("", server)]
    return [own]


# The most requests a minute a key may be given while the server's limit is off: a number every
# database's integer column holds (a billion more would be an error of the database, not the form's).
MOST_REQUESTS_PER_MINUTE = 1_000_000


def api_rpm_ceiling() -> int | None:
    """The most requests a minute a key may be given: the server's limit per minute (None: off)."""
    server = Limit.parse(settings.PLAYGROUND_API_RATE_LIMIT)
    return server.requests * 60 // server.seconds if server.requests > 0 else None


def lease_size(limit: "Limit") -> int:
    return max(1, min(16, limit.requests // 50))


_leases: dict[tuple, int] = {}  # (scope, limit, window) -> hits leased by this process, unspent
_leases_lock = threading.Lock()


def over_limit(scope: str, limit: Limit, now: float | None = None) -> int | None:
    """Count one hit for `scope`; None while under the limit, else the seconds to wait."""
    if limit.requests <= 0:
        return None
    now = time.time() if now is None else now
    window = int(now // limit.seconds)
    ends_at = (window + 1) * limit.seconds
    wait = max(1, int(ends_at - now) + 1)
    lease = (scope, limit, window)
    with _leases_lock:
        if _leases.get(lease, 0) > 0:
            _leases[lease] -= 1
            return None
    size = lease_size(limit)
    cache = caches["default"]
    if type(cache).incr is BaseCache.incr:
        # The database cache's incr() is a read then a write, which loses concurrent hits.
        hits = count_in_database(scope, window, ends_at, size)
    else:
        hits = count_in_cache(cache, f"ratelimit:{scope}:{window}", int(ends_at - now) + 1, size)
    granted = max(0, min(size, limit.requests - (hits - size)))
    if granted == 0:
        return wait
    if granted > 1:
        with _leases_lock:
            # Leases of ended windows, each window counted in its own limit's length.
            for old in [key for key in _leases if key[2] < int(now // key[1].seconds)]:
                del _leases[old]
            _leases[lease] = _leases.get(lease, 0) + granted - 1
    return None


def forget_leases() -> None:
    """Drop this process's unspent leases (tests that start the count again)."""
    with _leases_lock:
        _leases.clear()


def count_in_database(scope: str, window: int, ends_at: float, hits: int = 1) -> int:
    """The count of `scope`'s `window` with these `hits` added. The UPDATE that counts them locks
    the row (PostgreSQL; SQLite's writers take turns), so the read after it sees every hit before."""
    scope = scope[: RateCounter._meta.get_field("scope").max_length]
    ends = datetime.fromtimestamp(ends_at, UTC)
    while True:
        with transaction.atomic():
            counted = RateCounter.objects.filter(scope=scope, window=window).update(hits=F("hits") + hits)
            mine = RateCounter.objects.filter(scope=scope)
            if not counted:  # a new window: the first hit to get here starts it again at 1
                counted = mine.filter(window__lt=window).update(window=window, hits=hits, ends_at=ends)
            if not counted:  # a late hit of an earlier window (a host whose clock is behind)
                counted = mine.filter(window__gt=window).update(hits=F("hits") + hits)
            if counted:
                return RateCounter.objects.values_list("hits", flat=True).get(scope=scope)
        try:  # the scope's first hit (or the first in a long time)
            with transaction.atomic():
                RateCounter.objects.filter(ends_at__lt=datetime.now(UTC) - STALE_AFTER).delete()
                RateCounter.objects.create(scope=scope, window=window, hits=hits, ends_at=ends)
            return hits
        except IntegrityError:  # another hit started it first: count this one on it
            continue


def count_in_cache(cache: BaseCache, key: str, timeout: int, hits: int = 1) -> int:
    try:  # atomic where the cache has counters (Redis, memcached, memory)
        return cache.incr(key, hits)
    except ValueError:  # the window's first hit
        return hits if cache.add(key, hits, timeout=timeout) else cache.incr(key, hits)
