"""SQL queries per request: a status poll (API and htmx partial, fresh and conditional), a history
page with 100 and with 1,000 tasks, and a submit (API and browser form).

    .venv/bin/python -m benchmarks.queries [--sql]

Runs in-process with Django's test client against a fresh benchmark database under the production
settings, counting with `CaptureQueriesContext`. Every request is made once beforehand so the counts
are the steady state (e.g. an API key's `last_used` is written at most once a minute, not per call).
`--sql` prints the statements. The time column is the median of 20 in-process requests: a
relative figure (no HTTP server, no network), useful to compare pages with one another.
"""

import argparse
import json
import secrets
import statistics
import time
from datetime import timedelta

from . import harness


def add_history(user, count: int) -> None:
    """`count` finished tasks for `user`, each with one image output, as history shows them."""
    from django.utils import timezone

    from playground.catalog.models import CatalogEntry
    from playground.generations.models import Status, Task

    entry = CatalogEntry.objects.get(slug=harness.SEED)
    now = timezone.now()
    tasks = [
        Task(
            owner=user,
            model=entry,
            input={**harness.SEED_INPUT, "prompt": f"history prompt {i}"},
            status=Status.SUCCEEDED,
            engine="local",
            cost_estimate="0.1206",
            cost_actual="0.1206",
            output={"images": [{"file": f"outputs/x{i}/0.png", "content_type": "image/png", "width": 1024}]},
            request_id="req_bench",
            request_hash="0" * 64,
            source="api",
            started_at=now,
            finished_at=now,
        )
        for i in range(count)
    ]
    Task.objects.bulk_create(tasks, batch_size=500)
    Task.objects.filter(owner=user).update(created_at=now - timedelta(days=1))


def measure(client, method: str, path: str, kwargs) -> tuple[int, int, float, list[str]]:
    """(status, queries, median ms, statements) of a steady-state request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    call = getattr(client, method)
    call(path, **kwargs())
    with CaptureQueriesContext(connection) as captured:
        response = call(path, **kwargs())
    statements = [query["sql"] for query in captured.captured_queries]  # before the log is reset
    times = []
    for _ in range(20):
        started = time.perf_counter()
        call(path, **kwargs())
        times.append(time.perf_counter() - started)
    return response.status_code, len(statements), statistics.median(times) * 1000, statements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sql", action="store_true", help="print every statement")
    args = parser.parse_args()
    harness.configure()
    from django.test import Client

    from .poll import running_task

    user, key, session = harness.make_account()
    task_id = running_task(user)
    bearer = {"Authorization": f"Bearer {key}"}
    web = Client(HTTP_HOST=harness.HOST)
    web.cookies["sessionid"] = session
    api = Client(HTTP_HOST=harness.HOST)

    etags = {}
    for name, client, headers in (("api", api, bearer), ("partial", web, {"HX-Request": "true"})):
        path = f"/api/v1/tasks/{task_id}" if name == "api" else f"/tasks/{task_id}"
        etags[name] = client.get(path, headers=headers).headers.get("ETag")

    api_path = f"/api/v1/tasks/{task_id}"
    cases = [
        ("poll: API GET /api/v1/tasks/{id}", api, "get", api_path, lambda: {"headers": bearer}),
        (
            "poll: API, If-None-Match (unchanged)",
            api,
            "get",
            f"/api/v1/tasks/{task_id}",
            lambda: {"headers": {**bearer, "If-None-Match": etags["api"] or '"none"'}},
        ),
        (
            "poll: htmx partial GET /tasks/{id}",
            web,
            "get",
            f"/tasks/{task_id}",
            lambda: {"headers": {"HX-Request": "true"}},
        ),
        (
            "poll: partial, If-None-Match (unchanged)",
            web,
            "get",
            f"/tasks/{task_id}",
            lambda: {"headers": {"HX-Request": "true", "If-None-Match": etags["partial"] or '"none"'}},
        ),
    ]
    for count in (100, 1000):
        owner, _, owner_session = harness.make_account(f"history{count}")
        add_history(owner, count)
        history = Client(HTTP_HOST=harness.HOST)
        history.cookies["sessionid"] = owner_session
        cases.append((f"history page 1, {count:,} tasks", history, "get", "/history", dict))
        last = f"/history?page={count // 25}"
        cases.append((f"history last page, {count:,} tasks", history, "get", last, dict))

    def api_submit():
        body = {"model": harness.SEED, "input": {**harness.SEED_INPUT, "prompt": secrets.token_hex(8)}}
        return {"data": json.dumps(body), "content_type": "application/json", "headers": bearer}

    def form_submit():
        data = {**harness.SEED_INPUT, "form_token": secrets.token_urlsafe(16)}
        return {"data": data, "headers": {"HX-Request": "true"}}

    cases.append(("submit: API POST /api/v1/tasks", api, "post", "/api/v1/tasks", api_submit))
    cases.append(("submit: browser form (htmx)", web, "post", f"/play/{harness.SEED}", form_submit))

    rows = []
    for label, client, method, path, kwargs in cases:
        status, queries, ms, statements = measure(client, method, path, kwargs)
        rows.append([label, status, queries, f"{ms:.1f}"])
        if args.sql:
            print(f"\n{label}:")
            for statement in statements:
                print(f"  {statement[:300]}")
    print("\nSQL queries per request (steady state), SQLite, production settings")
    print(harness.table(rows, ["request", "status", "queries", "in-process ms"]))


if __name__ == "__main__":
    main()
