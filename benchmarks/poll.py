"""Poll cost: what one status poll costs the server, against the cheapest Django view there is.

    .venv/bin/python -m benchmarks.poll [--seconds 3] [--rounds 3] [--connections 8] [--no-pin]

Serves the app with production settings (`manage.py serve`: gunicorn, 2 processes x 4 threads, no
task worker so the task stays running) on SQLite, and loads each URL with wrk in turn:

- bare: `/bench/row/<id>`, three columns of one row read by primary key, as JSON, through the same
  middleware (only the benchmark settings route it); "bare, whole row" reads the whole row as a
  model instance (`get_object_or_404`), and "bare, signed in" is bare behind `login_required`
  (the session and user queries every signed-in page pays), for scale;
- API: `GET /api/v1/tasks/{id}` with a Bearer key, plain and (when the answer has an ETag) as a
  conditional poll with `If-None-Match`, which is what a polling client with a cache sends;
- partial: `GET /tasks/{id}` with `HX-Request: true` and a session cookie, the htmx status panel,
  plain and conditional (the browser revalidates it with `If-None-Match` by itself).

With two or more cores the server is pinned to the first and wrk to the second, so the load generator
does not take CPU from the server and requests/s measures the server's cost. The URLs take turns,
round after round, and each URL's requests/s is divided by bare's in the same
round (the goal is at least 0.5): on a shared or throttled machine the drift then cancels out. The
table shows medians over the rounds, and the range of the ratio. It also shows the server's CPU time
per request (every process of `serve`, from /proc) and bare's divided by the URL's: the same ratio
measured by cost rather than speed, which other load on the machine disturbs much less.
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
    # With two or more cores: the server on the first, wrk on the second, so the load generator
    # never competes with the server for CPU (requests/s then measures the server's cost alone).
    server_cpus, wrk_cpus = ({0}, {1}) if (os.cpu_count() or 1) >= 2 and not args.no_pin else (None, None)
    with harness.serving(task_workers=0, cpus=server_cpus) as server:
        base = server.url
        plans = [
            ("bare", f"{base}/bench/row/{task_id}", {}),
            ("bare, whole row", f"{base}/bench/object/{task_id}", {}),
            ("bare, signed in", f"{base}/bench/signed-in/{task_id}", {"Cookie": f"sessionid={session}"}),
        ]
        for name, url, headers in (
            ("API", f"{base}/api/v1/tasks/{task_id}", api_headers),
            ("partial", f"{base}/tasks/{task_id}", partial_headers),
        ):
            first = httpx.get(url, headers=headers)
            assert first.status_code == 200, (name, first.status_code, first.text[:300])
            plans.append((f"{name} {first.status_code}, {len(first.content):,} B", url, headers))
            etag = first.headers.get("ETag")
            if etag:
                conditional = {**headers, "If-None-Match": etag}
                status = httpx.get(url, headers=conditional).status_code
                plans.append((f"{name} {status}, If-None-Match", url, conditional))
            else:
                print(f"  {name}: no ETag, so no conditional poll")
        for _, url, headers in plans:  # warm every process and code path first
            for _ in range(20):
                httpx.get(url, headers=headers)
        runs = {label: [] for label, _, _ in plans}
        for round_number in range(1, args.rounds + 1):
            for label, url, headers in plans:
                cpu = server.cpu_seconds()
                result = harness.wrk(
                    url, headers, seconds=args.seconds, connections=args.connections, cpus=wrk_cpus
                )
                result["cpu_ms"] = (server.cpu_seconds() - cpu) * 1000 / result["requests"]
                runs[label].append(result)
            print(
                f"  round {round_number}: " + ", ".join(f"{k} {v[-1]['rps']:.0f}/s" for k, v in runs.items())
            )
    rows = []
    for label, results in runs.items():
        # Each URL against the bare view of the same round: the machine's drift cancels out.
        ratios = [r["rps"] / bare["rps"] for r, bare in zip(results, runs["bare"], strict=True)]
        cpu_ratios = [bare["cpu_ms"] / r["cpu_ms"] for r, bare in zip(results, runs["bare"], strict=True)]
        errors = sum(r["socket_errors"] + r["bad_status"] for r in results)
        rows.append(
            [
                label,
                f"{statistics.median(r['rps'] for r in results):.0f}",
                f"{statistics.median(r['p50_ms'] for r in results):.1f}",
                f"{statistics.median(r['p99_ms'] for r in results):.1f}",
                f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})",
                f"{statistics.median(r['cpu_ms'] for r in results):.2f}",
                f"{statistics.median(cpu_ratios):.2f}",
                errors,
            ]
        )
    placement = "server on CPU 0, wrk on CPU 1" if server_cpus else "server and wrk unpinned"
    print(
        f"\nPoll cost: wrk -t1 -c{args.connections} -d{args.seconds}s per URL x {args.rounds} rounds "
        f"(medians), gunicorn 2x4 threads, SQLite, {placement}"
    )
    print(
        harness.table(
            rows, ["URL", "req/s", "p50 ms", "p99 ms", "ratio (range)", "CPU ms/req", "CPU ratio", "errors"]
        )
    )


if __name__ == "__main__":
    main()
