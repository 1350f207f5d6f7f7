"""Queue throughput on PostgreSQL: tasks per second with 1, 2 and 4 `db_worker` processes.

    .venv/bin/python -m benchmarks.throughput [--database-url postgres://…] [--tasks 60] [--jobs 400]

Needs PostgreSQL. Without `--database-url` (or BENCH_DATABASE_URL), and when run as root on a
Debian-style install, it creates (or re-creates) the role and database `bench_playground` on the
local cluster with `runuser -u postgres -- psql`; start the cluster first if it is down
(`pg_ctlcluster 15 main start`). The database is dropped and made afresh on every run, so point an
explicit URL only at a database you can lose.

For each worker count, a batch is queued first, then the workers (started exactly as
`manage.py serve` starts them: `db_worker --interval 0.1 --no-reload --no-startup-delay`) drain it:

- tasks: real tasks (seed model, 1K, n=1, local engine: a Pillow render and a PNG save each);
- no-op jobs: `benchmarks.jobs.noop`, the queue's own overhead (claim with SKIP LOCKED, run, record).

Throughput = items / (last finish - first start), from the rows' own timestamps.
"""

import argparse
import os
import shutil
import signal
import subprocess
import time
from urllib.parse import urlsplit

from . import harness

DATABASE = "bench_playground"
WORKER = ["db_worker", "--interval", "0.1", "--no-reload", "--no-startup-delay", "--queue-name", "default"]


def fresh_local_database() -> str:
    """Drop and create the bench_playground role's database on the local cluster (as postgres)."""
    if os.geteuid() != 0 or not shutil.which("runuser") or not shutil.which("psql"):
        raise SystemExit(
            "Give a PostgreSQL database to use: --database-url postgres://user:pass@127.0.0.1/bench_db "
            "(it is dropped and re-created), or run as root on a host with a local PostgreSQL cluster."
        )
    password = "bench-" + DATABASE  # a throwaway database on 127.0.0.1

    def psql(sql: str) -> None:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(
                f"psql failed ({done.stderr.strip()}). Is the cluster running? `pg_ctlcluster 15 main start`"
            )

    psql(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_playground') THEN "
        f"CREATE ROLE bench_playground LOGIN PASSWORD '{password}'; END IF; END $$;"
    )
    psql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    psql(f"CREATE DATABASE {DATABASE} OWNER bench_playground")
    return f"postgres://bench_playground:{password}@127.0.0.1:5432/{DATABASE}"


def drain(batch: int, workers: int, finished) -> float:
    """Start `workers` db_workers, wait until `finished()` counts `batch` items, stop them; returns
    the throughput measured from the rows (items per second)."""
    processes = [
        subprocess.Popen(
            [harness.PYTHON, "manage.py", *WORKER],
            cwd=harness.ROOT,
            env=os.environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(workers)
    ]
    try:
        deadline = time.monotonic() + 300
        while True:
            count, first_start, last_finish = finished()
            if count >= batch:
                return batch / (last_finish - first_start).total_seconds()
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {count} of {batch} finished in 300 s")
            time.sleep(0.2)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--tasks", type=int, default=60, help="real tasks per worker count")
    parser.add_argument("--jobs", type=int, default=400, help="no-op jobs per worker count")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to measure")
    args = parser.parse_args()
    url = args.database_url or fresh_local_database()
    if urlsplit(url).scheme not in ("postgres", "postgresql", "pgsql"):
        raise SystemExit("This benchmark is about PostgreSQL: give a postgres:// URL.")
    harness.configure(url)
    from django.db.models import Count, Max, Min
    from django_tasks_db.models import DBTaskResult

    from playground.generations.models import Task
    from playground.generations.services import submit_task

    from .jobs import noop

    user, _, _ = harness.make_account()
    rows = []
    for workers in [int(n) for n in args.workers.split(",")]:
        Task.objects.all().delete()
        DBTaskResult.objects.all().delete()
        for i in range(args.tasks):
            data = {**harness.SEED_INPUT, "prompt": f"throughput {i}"}
            submit_task(user, harness.SEED, data, request_id="req_bench", source="api")
        tasks = drain(
            args.tasks,
            workers,
            lambda: tuple(
                Task.objects.filter(status__in=["succeeded", "failed"])
                .aggregate(n=Count("id"), start=Min("started_at"), end=Max("finished_at"))
                .values()
            ),
        )
        assert not Task.objects.exclude(status="succeeded").exists(), "a task did not succeed"
        DBTaskResult.objects.all().delete()
        for _ in range(args.jobs):
            noop.enqueue()
        jobs = drain(
            args.jobs,
            workers,
            lambda: tuple(
                DBTaskResult.objects.filter(finished_at__isnull=False)
                .aggregate(n=Count("id"), start=Min("started_at"), end=Max("finished_at"))
                .values()
            ),
        )
        rows.append([workers, f"{tasks:.1f}", f"{jobs:.0f}"])
        print(f"  {workers} worker(s): {tasks:.1f} tasks/s, {jobs:.0f} no-op jobs/s", flush=True)
    print(f"\nQueue throughput on PostgreSQL ({args.tasks} tasks / {args.jobs} no-op jobs per row)")
    print(harness.table(rows, ["db_worker processes", "tasks/s (1K image)", "no-op jobs/s"]))


if __name__ == "__main__":
    main()
