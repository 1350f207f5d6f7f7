"""Poll cost: what one status poll costs the server, against the cheapest Django view there is.

    .venv/bin/python -m benchmarks.poll [--seconds 3] [--rounds 3] [--connections 8] [--no-pin]

Serves the app with production settings (`manage.py serve`: gunicorn, 2 processes x 4 threads, no
task worker so the task stays running) on SQLite and, beside it, the minimal yardstick under the same
gunicorn command, and loads each URL with wrk in turn:

- minimal: `/bench/minimal/<id>` on its own server (`benchmarks.minimal_settings`: no installed app,
  `CommonMiddleware` alone), three columns of the same task row read by primary key with a raw cursor,
  as JSON: what Django itself costs, the headline divisor;
- bare: `/bench/row/<id>`, the same three columns through the ORM (`values().first()`), inside the
  app's own middleware (only the benchmark settings route it), the second divisor; "bare, whole
  row" reads the whole row as a model instance (`get_object_or_404`), and "bare, signed in" is bare
  behind `login_required` (the session and user queries every signed-in page pays), for scale;
- API: `GET /api/v1/tasks/{id}` with a Bearer key, plain and (when the answer has an ETag) as a
  conditional poll with `If-None-Match`, which is what a polling client with a cache sends;
- partial: `GET /tasks/{id}` with `HX-Request: true` and a session cookie, the htmx status panel,
  plain and conditional (the browser revalidates it with `If-None-Match` by itself).

With two or more cores both servers are pinned to the first and wrk to the second, so the load
generator does not take CPU from the server and requests/s measures the server's cost. The URLs take
turns, round after round, and each URL's requests/s is divided by minimal's and by bare's in the same
round: on a shared or throttled machine the drift then cancels out. The table shows medians over the
rounds, and the range of the ratios. It also shows the server's CPU time per request (every process
of the server that answered, from /proc) and the yardsticks' divided by the URL's: the same ratios
measured by cost rather than speed, which other load on the machine disturbs much less.

A URL that got any answer other than 2xx or 3xx (a 429, a 5xx), or a socket error, makes the run
void: its numbers measure the error, not the poll. The table then says so and the script exits 1.
"""

import argparse
import os
import statistics
from datetime import timedelta

import httpx

from . import harness


def running_task(user) -> str:
    """A task as a worker leaves it mid-run: processing, with a live lease and progress messages."""
    from django.utils import timezone

    from playground.generations.lifecycle import record_message, transition
    from playground.generations.models import Status
    from playground.generations.services import submit_task

    task = submit_task(user, harness.SEED, harness.SEED_INPUT, request_id="req_bench", source="web").task
    lease = timezone.now() + timedelta(hours=1)
    transition(task.pk, Status.PROCESSING, message="Started.", attempts=1, lease_expires_at=lease)
    record_message(task.pk, Status.PROCESSING, "Rendering image 1 of 1.")
    return task.pk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3, help="wrk duration per URL and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all URLs")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--no-pin", action="store_true", help="let server and wrk share every CPU")
    args = parser.parse_args()
    harness.ensure_wrk()
    harness.configure()
    user, key, session = harness.make_account()
    task_id = running_task(user)
    api_headers = {"Authorization": f"Bearer {key}"}
    partial_headers = {"Cookie": f"sessionid={session}", "HX-Request": "true"}
    # With two or more cores: both servers on the first, wrk on the second, so the load generator
    # never competes with a server for CPU (requests/s then measures the server's cost alone).
    server_cpus, wrk_cpus = ({0}, {1}) if (os.cpu_count() or 1) >= 2 and not args.no_pin else (None, None)
    with (
        harness.serving(task_workers=0, cpus=server_cpus) as app,
        harness.serving_minimal(f"/bench/minimal/{task_id}", cpus=server_cpus) as minimal,
    ):
        signed_in = {"Cookie": f"sessionid={session}"}
        plans = [
            ("minimal", minimal, f"{minimal.url}/bench/minimal/{task_id}", {}),
            ("bare", app, f"{app.url}/bench/row/{task_id}", {}),
            ("bare, whole row", app, f"{app.url}/bench/object/{task_id}", {}),
            ("bare, signed in", app, f"{app.url}/bench/signed-in/{task_id}", signed_in),
        ]
        yardsticks = [httpx.get(url) for _, _, url, _ in plans[:2]]
        assert [answer.status_code for answer in yardsticks] == [200, 200], [a.text[:300] for a in yardsticks]
        # The same row (the minimal one's updated_at is naive: a raw cursor skips the ORM's time zone).
        assert [[a.json()["id"], a.json()["status"]] for a in yardsticks] == [[task_id, "processing"]] * 2
        for name, url, headers in (
            ("API", f"{app.url}/api/v1/tasks/{task_id}", api_headers),
            ("partial", f"{app.url}/tasks/{task_id}", partial_headers),
        ):
            first = httpx.get(url, headers=headers)
            assert first.status_code == 200, (name, first.status_code, first.text[:300])
            plans.append((f"{name} {first.status_code}, {len(first.content):,} B", app, url, headers))
            etag = first.headers.get("ETag")
            if etag:
                conditional = {**headers, "If-None-Match": etag}
                status = httpx.get(url, headers=conditional).status_code
                plans.append((f"{name} {status}, If-None-Match", app, url, conditional))
            else:
                print(f"  {name}: no ETag, so no conditional poll")
        for _, _, url, headers in plans:  # warm every process and code path first
            for _ in range(20):
                httpx.get(url, headers=headers)
        runs = {label: [] for label, _, _, _ in plans}
        for round_number in range(1, args.rounds + 1):
            for label, server, url, headers in plans:
                cpu = server.cpu_seconds()
                result = harness.wrk(
                    url, headers, seconds=args.seconds, connections=args.connections, cpus=wrk_cpus
                )
                result["cpu_ms"] = share((server.cpu_seconds() - cpu) * 1000, result["requests"])
                runs[label].append(result)
            print(
                f"  round {round_number}: " + ", ".join(f"{k} {v[-1]['rps']:.0f}/s" for k, v in runs.items())
            )
    rows, void = [], []
    for label, results in runs.items():
        # wrk counts every answer above 399 as a bad status: everything that is not 2xx or 3xx.
        refused = sum(r["bad_status"] for r in results)
        failed = sum(r["socket_errors"] for r in results)
        if refused or failed:
            void.append(label)
        rows.append(
            [
                f"{label} (VOID)" if refused or failed else label,
                f"{statistics.median(r['rps'] for r in results):.0f}",
                f"{statistics.median(r['p50_ms'] for r in results):.1f}",
                f"{statistics.median(r['p99_ms'] for r in results):.1f}",
                speed_ratio(results, runs["minimal"]),
                speed_ratio(results, runs["bare"]),
                f"{statistics.median(r['cpu_ms'] for r in results):.2f}",
                cost_ratio(results, runs["minimal"]),
                cost_ratio(results, runs["bare"]),
                refused,
                failed,
            ]
        )
    placement = "servers on CPU 0, wrk on CPU 1" if server_cpus else "servers and wrk unpinned"
    print(
        f"\nPoll cost: wrk -t1 -c{args.connections} -d{args.seconds}s per URL x {args.rounds} rounds "
        f"(medians), gunicorn 2x4 threads, SQLite, {placement}"
    )
    header = ["URL", "req/s", "p50 ms", "p99 ms", "ratio vs minimal (range)", "ratio vs bare (range)"]
    header += ["CPU ms/req", "CPU ratio vs minimal", "CPU ratio vs bare", "not 2xx/3xx", "socket errors"]
    print(harness.table(rows, header))
    if void:
        raise SystemExit(
            f"VOID run: {'; '.join(void)} got answers other than 2xx/3xx or socket errors; "
            "these numbers measure the errors, not the polls."
        )


def speed_ratio(results: list[dict], yardstick: list[dict]) -> str:
    """A URL's requests/s over the yardstick's, round by round: median (range)."""
    ratios = [share(r["rps"], y["rps"]) for r, y in zip(results, yardstick, strict=True)]
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"


def cost_ratio(results: list[dict], yardstick: list[dict]) -> str:
    """The yardstick's server CPU per request over the URL's, round by round: the median."""
    ratios = [share(y["cpu_ms"], r["cpu_ms"]) for r, y in zip(results, yardstick, strict=True)]
    return f"{statistics.median(ratios):.2f}"


def share(part: float, whole: float) -> float:
    """part / whole, or NaN when a run got no answer at all (a void run still prints its table)."""
    return part / whole if whole else float("nan")


if __name__ == "__main__":
    main()
