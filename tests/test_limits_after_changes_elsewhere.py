"""Limits hold when something changes elsewhere or at an edge.

- Rate-limit leases (`access.ratelimit`): a lease of one limit never throws away another's (their
  window numbers are counted in different lengths), nor does a slow hit of the window that just
  ended throw away the new window's lease: hits counted and never spent would be refused early.
- Spend limits are read from the key's locked row at submit, never from the process's copy of
  the key (`keys.services`, kept for a second): a budget set or removed in another process applies
  to the very next submit.
"""

from decimal import Decimal

from playground.access.models import RateCounter
from playground.access.ratelimit import Limit, over_limit
from playground.generations.models import Task
from playground.keys.models import ApiKey
from playground.keys.services import issue_key

from .helpers import Api

NOW = 1_800_000_000.0  # a multiple of 3600: both limits below are at the start of a window


def test_a_lease_of_a_limit_with_another_window_length_does_not_strand_the_others(db):
    """Two limits of 800 (leases of 16) whose windows differ in length, used one after the other
    by one process (e.g. the API limit and a sign-up limit configured per hour): each of 100 hits
    on each should pass, and the shared count should be about what was spent."""
    per_minute, per_hour = Limit(800, 60), Limit(800, 3600)
    passed = 0
    for _ in range(100):
        passed += over_limit("key:1", per_minute, now=NOW) is None
        over_limit("signup:10.0.0.1", per_hour, now=NOW)
    counted = RateCounter.objects.get(scope="key:1").hits
    assert counted <= 100 + 15, f"{counted} hits counted for 100 spent"  # at most one lease unspent
    assert passed == 100


def test_a_slow_hit_of_the_last_window_does_not_drop_the_new_windows_lease(db):
    """Two threads at a window's end: one computed the new window and leased from it, the other
    still computed the old one and leases after it. The new window's lease should survive."""
    limit = Limit(800, 60)
    assert over_limit("key:2", limit, now=NOW + 60) is None  # new window: lease of 16, 15 kept
    assert over_limit("key:2", limit, now=NOW + 59.999) is None  # the slow one, old window
    before = RateCounter.objects.get(scope="key:2").hits
    assert over_limit("key:2", limit, now=NOW + 61) is None
    assert RateCounter.objects.get(scope="key:2").hits == before


def test_a_budget_set_elsewhere_is_not_skipped_for_the_key_caches_second(
    client, user, catalog, django_capture_on_commit_callbacks, settings, queue_only
):
    """The admin (another process: an UPDATE, no signal here) gives a key a tiny budget; the next
    submit must be refused (402): spend limits are read under the lock, never from the cache."""
    settings.PLAYGROUND_KEY_CACHE_SECONDS = 1.0  # the default
    issued = issue_key(user)
    api = Api(client, issued.secret, django_capture_on_commit_callbacks)
    assert api.get("/api/v1/tasks").status_code == 200  # the key is now cached
    ApiKey.objects.filter(pk=issued.key.pk).update(budget=Decimal("0.0001"))
    response = api.submit()
    assert response.status_code == 402, response.json()
    assert not Task.objects.exists()


def test_a_budget_removed_elsewhere_does_not_break_submits(
    client, user, catalog, django_capture_on_commit_callbacks, settings, queue_only
):
    settings.PLAYGROUND_KEY_CACHE_SECONDS = 1.0
    issued = issue_key(user, budget=Decimal("10"))
    api = Api(client, issued.secret, django_capture_on_commit_callbacks)
    assert api.get("/api/v1/tasks").status_code == 200
    ApiKey.objects.filter(pk=issued.key.pk).update(budget=None)
    client.raise_request_exception = False
    response = api.client.post(
        "/api/v1/tasks",
        data={"model": "gemini-3-pro-image-preview-official", "input": {"prompt": "x"}},
        content_type="application/json",
        headers=api.headers({}),
    )
    assert response.status_code == 201
