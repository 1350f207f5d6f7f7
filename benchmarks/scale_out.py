"""Scale-out throughput: tasks per second of 1 web + 1 worker against 2 web + 2 workers, side by side.

    .venv/bin/python -m benchmarks.scale_out [--tasks 200] [--database-url postgres://…]

Each layout is the multi-host cluster of tests/scale (`tests/scale/cluster.py`): PostgreSQL, moto's
S3 server on 127.0.0.1 as the bucket, gunicorn web hosts and `db_worker` hosts, each host with its
own empty data folder, sharing only the database and the bucket. The same number of real tasks (seed
model, 1K, n=1, local engine: a Pillow render and a PNG put into the bucket) is sent through the API,
spread over the web hosts by one client thread per host, as fast as they answer.

Throughput = tasks / (first submit - last finish), from the task rows' own timestamps; the submit
rate is the API's alone. Without --database-url it uses the cluster `.ci/postgres` sets up (as root),
in a database `playground_scale` it drops and re-creates.
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from tests.scale.cluster import ROOT, Cluster, Postgres, wait_until

# Whose CPU the run used, by process name prefix: the machine's cores are the limit on one machine.
ROLES = ("web", "worker", "s3", "reaper")


def machine_busy_seconds() -> float:
    """CPU time all cores have spent busy since boot (/proc/stat): PostgreSQL and this client too."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def measure(database_url: str, webs: int, workers: int, tasks: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"scale-{webs}x{workers}-"))
    cluster = Cluster(root, Postgres(database_url), webs=webs, workers=workers)
    try:
        cluster.start()
        task_ids: list[str] = []
        lock = threading.Lock()

        def send(web, count):
            for n in range(count):
                task_id = cluster.submit(web, prompt=f"throughput {web.name} {n}")
                with lock:
                    task_ids.append(task_id)

        cpu_before = {p.name: p.cpu_seconds() for p in [*cluster.processes, cluster.moto]}
        busy_before = machine_busy_seconds()
        started = time.monotonic()
        shares = [tasks // webs + (1 if n < tasks % webs else 0) for n in range(webs)]
        senders = [
            threading.Thread(target=send, args=(web, share))
            for web, share in zip(cluster.web_hosts, shares, strict=True)
        ]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        assert wait_until(
            lambda: (
                not cluster.database.query(
                    "SELECT 1 FROM generations_task WHERE id = ANY(%s)"
                    " AND status IN ('queued', 'processing')",
                    task_ids,
                )
            ),
            timeout=600,
            interval=0.2,
        ), "tasks never ended"
        wall = time.monotonic() - started
        cpu = {p.name: p.cpu_seconds() - cpu_before[p.name] for p in [*cluster.processes, cluster.moto]}
        [(first, submitted, last, succeeded)] = cluster.database.query(
            "SELECT extract(epoch FROM min(created_at)), extract(epoch FROM max(created_at)),"
            " extract(epoch FROM max(finished_at)), count(*) FILTER (WHERE status = 'succeeded')"
            " FROM generations_task WHERE id = ANY(%s)",
            task_ids,
        )
        assert succeeded == tasks, f"{succeeded} of {tasks} succeeded"
        assert len(cluster.bucket_keys("outputs/")) == tasks and cluster.local_files() == []
        share = {role: sum(v for k, v in cpu.items() if k.startswith(role)) / wall for role in ROLES}
        share["machine"] = (machine_busy_seconds() - busy_before) / wall
        return {
            "tasks_per_s": tasks / float(last - first),
            "submits_per_s": tasks / max(float(submitted - first), 1e-6),
            "cores": share,
        }
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each layout, in turn (median kept)")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    url = (
        args.database_url
        or subprocess.run(
            ["bash", str(ROOT / ".ci" / "postgres")], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    layouts = [(1, 1), (2, 2)]
    runs: dict[tuple[int, int], list[dict]] = {layout: [] for layout in layouts}
    for _ in range(args.rounds):
        for webs, workers in layouts:
            runs[(webs, workers)].append(measure(url, webs, workers, args.tasks))
            time.sleep(1)
    print(
        f"{args.tasks} tasks (seed model, 1K, local engine, outputs in the bucket), median of {args.rounds}."
    )
    print(f"This machine has {os.cpu_count()} cores; 'cores' is CPU time per second of the run, by role.")
    base = statistics.median(run["tasks_per_s"] for run in runs[(1, 1)])
    for (webs, workers), results in runs.items():
        rate = statistics.median(run["tasks_per_s"] for run in results)
        submits = statistics.median(run["submits_per_s"] for run in results)
        cores = {
            role: statistics.median(run["cores"][role] for run in results) for role in (*ROLES, "machine")
        }
        used = ", ".join(f"{role} {cores[role]:.2f}" for role in ROLES)
        print(
            f"  {webs} web + {workers} worker{'s' if workers > 1 else ''}: {rate:6.1f} tasks/s "
            f"({rate / base:.2f}x of 1 + 1), API submits {submits:6.1f}/s; cores busy: {used}; "
            f"the whole machine {cores['machine']:.2f} of {os.cpu_count()}"
        )


if __name__ == "__main__":
    main()
