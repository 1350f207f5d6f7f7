"""Grid polling: what an open grid of 16 running cells costs the server, against 16 separate panels.

    .venv/bin/python -m benchmarks.grid_poll [--seconds 3] [--rounds 3] [--connections 8] [--no-pin]

A grid page (`/batches/<id>`) polls each cell that has not ended, every second, with the cell's
ETag; 16 separate task pages would each poll their status panel every second, with theirs. Both
make 16 requests a second while every cell runs; what differs is what one poll costs. This serves
the app with production settings (`manage.py serve`: gunicorn, no task worker, so the batch's 16
tasks stay running) beside the minimal yardstick of `benchmarks.poll`, and loads with wrk, in turn
and round after round: the minimal view, one cell's conditional poll (304) and one task's
conditional panel poll (304). It prints requests/s and server CPU per request of each, and what an
open page costs the server each second: 16 polls x CPU per poll, as a share of one core.
"""

import argparse
import os
import statistics
from datetime import timedelta

import httpx

from . import harness
from .poll import share, speed_ratio

CELLS = 16


def running_batch(user) -> tuple[str, list[str]]:
    """A 1x16 batch (the seed model's prompt varied over 16 values) whose tasks all run."""
    from django.utils import timezone

    from playground.generations.batches import submit_batch
    from playground.generations.lifecycle import transition
    from playground.generations.models import Status

    body = {
        "model": harness.SEED,
        "input": harness.SEED_INPUT,
        "vary": {"prompt": [f"{harness.SEED_INPUT['prompt']} #{n}" for n in range(CELLS)]},
    }
    batch = submit_batch(user, body, request_id="req_bench", source="web").batch
    task_ids = list(batch.tasks.order_by("created_at", "pk").values_list("pk", flat=True))
    lease = timezone.now() + timedelta(hours=1)
    for task_id in task_ids:
        transition(task_id, Status.PROCESSING, message="Started.", attempts=1, lease_expires_at=lease)
    return batch.pk, task_ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3, help="wrk duration per URL and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all URLs")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    parser.add_argument("--no-pin", action="store_true", help="let server and wrk share every CPU")
    args = parser.parse_args()
    harness.ensure_wrk()
    harness.configure()
    user, _key, session = harness.make_account()
    batch_id, task_ids = running_batch(user)
    cookie = {"Cookie": f"sessionid={session}", "HX-Request": "true"}
    server_cpus, wrk_cpus = ({0}, {1}) if (os.cpu_count() or 1) >= 2 and not args.no_pin else (None, None)
    with (
        harness.serving(task_workers=0, cpus=server_cpus) as app,
        harness.serving_minimal(f"/bench/minimal/{task_ids[0]}", cpus=server_cpus) as minimal,
    ):
        plans = [("minimal", minimal, f"{minimal.url}/bench/minimal/{task_ids[0]}", {})]
        for label, url in (
            ("grid cell", f"{app.url}/batches/{batch_id}/cells/{task_ids[0]}"),
            ("task panel", f"{app.url}/tasks/{task_ids[0]}"),
        ):
            first = httpx.get(url, headers=cookie)
            assert first.status_code == 200 and first.headers.get("ETag"), (label, first.status_code)
            conditional = {**cookie, "If-None-Match": first.headers["ETag"]}
            assert httpx.get(url, headers=conditional).status_code == 304, label
            plans.append((f"{label} 304", app, url, conditional))
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
            speeds = ", ".join(f"{k} {v[-1]['rps']:.0f}/s" for k, v in runs.items())
            print(f"  round {round_number}: {speeds}")
    rows, void = [], []
    for label, results in runs.items():
        if sum(r["bad_status"] + r["socket_errors"] for r in results):
            void.append(label)
        cpu_ms = statistics.median(r["cpu_ms"] for r in results)
        page = "" if label == "minimal" else f"{CELLS * cpu_ms / 10:.1f}%"  # 16 polls/s x ms, of 1000 ms
        rows.append(
            [
                f"{label} (VOID)" if label in void else label,
                f"{statistics.median(r['rps'] for r in results):.0f}",
                speed_ratio(results, runs["minimal"]),
                f"{cpu_ms:.2f}",
                page,
            ]
        )
    print(
        f"\nGrid polling: an open page with {CELLS} running cells makes {CELLS} polls a second, as {CELLS} "
        f"task pages do; wrk -c{args.connections} -d{args.seconds}s x {args.rounds} rounds (medians)"
    )
    header = ["URL", "req/s", "ratio vs minimal (range)", "CPU ms/poll"]
    header.append(f"one page ({CELLS}/s), share of a core")
    print(harness.table(rows, header))
    if void:
        raise SystemExit(f"VOID run: {'; '.join(void)} got answers other than 2xx/3xx or socket errors.")


if __name__ == "__main__":
    main()
