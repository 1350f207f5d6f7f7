"""Submit -> image latency and worker pickup delay on the real `manage.py serve` stack.

    .venv/bin/python -m benchmarks.latency [--tasks 20] [--poll-interval 0.02]

Serves the app as `make run` does (gunicorn 2x4 threads + one `db_worker --interval 0.1` + the
reaper) with production settings on SQLite, then submits one task at a time through the API (the
seed model, 1K, n=1, local engine) and polls `GET /api/v1/tasks/{id}` until it has succeeded, then
downloads the image. Two warm-up tasks are not counted. Between tasks the client pauses a random
0-300 ms, so submits land at random points of the worker's 100 ms polling cycle, as users' do (back
to back, every submit would arrive just after the worker's last look and wait the longest).

- submit -> succeeded: from sending the POST to the poll that first sees `succeeded`, as a client
  sees it (it includes up to one poll interval of waiting);
- submit -> image: the same plus downloading the output file;
- pickup: the task's `started_at - created_at` (enqueue, the worker's polling sleep, the claim);
- run: `finished_at - started_at` (rendering the image and saving it).
"""

import argparse
import random
import time

import httpx

from . import harness


def run_one(client: httpx.Client, base: str, headers: dict, poll_interval: float) -> tuple[str, float, float]:
    """Submit one task and wait for its image: (task id, seconds to succeeded, seconds to image)."""
    started = time.perf_counter()
    created = client.post(f"{base}/api/v1/tasks", json={"model": harness.SEED, "input": harness.SEED_INPUT})
    created.raise_for_status()
    task_id = created.json()["task_id"]
    deadline = started + 60
    while True:
        body = client.get(f"{base}/api/v1/tasks/{task_id}", headers=headers).json()
        if body["status"] == "succeeded":
            break
        if body["status"] in ("failed", "cancelled") or time.perf_counter() > deadline:
            raise RuntimeError(f"task {task_id} ended {body['status']}: {body.get('error')}")
        time.sleep(poll_interval)
    succeeded = time.perf_counter() - started
    image = client.get(body["output"]["images"][0]["url"])
    image.raise_for_status()
    return task_id, succeeded, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20, help="tasks measured (after 2 warm-up tasks)")
    parser.add_argument("--poll-interval", type=float, default=0.02, help="seconds between polls")
    args = parser.parse_args()
    harness.configure()
    from playground.generations.models import Task

    _, key, _ = harness.make_account()
    headers = {"Authorization": f"Bearer {key}"}
    with harness.serving(task_workers=1) as server, httpx.Client(headers=headers, timeout=30) as client:
        base = server.url
        for _ in range(2):
            run_one(client, base, headers, args.poll_interval)
        measured = []
        pause = random.Random(42)
        for _ in range(args.tasks):
            time.sleep(pause.uniform(0, 0.3))
            measured.append(run_one(client, base, headers, args.poll_interval))
    tasks = {task.pk: task for task in Task.objects.filter(pk__in=[task_id for task_id, _, _ in measured])}
    pickup = [(t.started_at - t.created_at).total_seconds() for t in tasks.values()]
    run = [(t.finished_at - t.started_at).total_seconds() for t in tasks.values()]
    print(
        f"\nLatency over {args.tasks} tasks, one at a time (seed model, 1K, n=1, local engine), "
        f"client polling every {args.poll_interval * 1000:.0f} ms"
    )
    print(f"  submit -> succeeded  {harness.summary_ms([s for _, s, _ in measured])}")
    print(f"  submit -> image      {harness.summary_ms([i for _, _, i in measured])}")
    print(f"  pickup (queued)      {harness.summary_ms(pickup)}")
    print(f"  run (render + save)  {harness.summary_ms(run)}")


if __name__ == "__main__":
    main()
