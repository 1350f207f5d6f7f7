"""Memory under oversized requests: peak RSS of the web processes while clients send bodies far
over the limit.

    .venv/bin/python -m benchmarks.body_limit

Serves the app with production settings (one gunicorn worker, so one process takes every request)
and reads that worker's peak resident set (VmHWM in /proc) before and after: 20 POSTs of a 200 MB
JSON body announced by Content-Length (refused with 413 before the body is read), 5 POSTs of a
200 MB body sent chunked without a length (the server reads up to the limit, then refuses), and,
for comparison, 5 accepted POSTs just under the 32 MB limit. The goal: refused bodies add nothing
near their size to the peak.
"""

import argparse
import os
import time
from pathlib import Path

import httpx

from . import harness

MB = 1024 * 1024


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def gunicorn_worker(server_pid: int) -> int:
    """The single gunicorn worker below `manage.py serve`."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    for pid in children.get(server_pid, []):
        if b"gunicorn" in Path(f"/proc/{pid}/cmdline").read_bytes():
            workers = children.get(pid, [])
            if workers:
                return workers[0]
    raise RuntimeError("no gunicorn worker found")


def chunks(total: int, size: int = MB):
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    harness.configure()
    _, secret, _ = harness.make_account()
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    limit = int(os.environ.get("PLAYGROUND_MAX_BODY_BYTES", 32 * MB))
    with harness.serving(web_workers=1) as server, httpx.Client(base_url=server.url, timeout=120) as client:
        worker = gunicorn_worker(server.pid)
        client.get("/api/v1/models", headers=headers)  # warm up
        start = peak_rss_mb(worker)
        rows = []
        began = time.monotonic()
        statuses = set()
        for _ in range(20):
            response = client.post(
                "/api/v1/tasks",
                headers={**headers, "Content-Length": str(200 * MB)},
                content=chunks(200 * MB),
            )
            statuses.add(response.status_code)
        rows.append(
            [
                "200 MB with Content-Length x20",
                sorted(statuses),
                f"{peak_rss_mb(worker) - start:.1f}",
                f"{time.monotonic() - began:.1f}",
            ]
        )
        began, statuses = time.monotonic(), set()
        for _ in range(5):
            try:
                response = client.post("/api/v1/tasks", headers=headers, content=chunks(200 * MB))
                statuses.add(response.status_code)
            except httpx.HTTPError as exc:  # the server may close the connection mid-body
                statuses.add(type(exc).__name__)
        rows.append(
            [
                "200 MB chunked, no length x5",
                sorted(statuses, key=str),
                f"{peak_rss_mb(worker) - start:.1f}",
                f"{time.monotonic() - began:.1f}",
            ]
        )
        began, statuses = time.monotonic(), set()
        body = b'{"model": "nope", "input": {"prompt": "' + b"x" * (limit - 100) + b'"}}'
        for _ in range(5):
            statuses.add(client.post("/api/v1/tasks", headers=headers, content=body).status_code)
        rows.append(
            [
                f"{len(body) / MB:.1f} MB accepted-size body x5 (for scale)",
                sorted(statuses),
                f"{peak_rss_mb(worker) - start:.1f}",
                f"{time.monotonic() - began:.1f}",
            ]
        )
    print(harness.machine())
    print(f"gunicorn worker peak RSS at start: {start:.1f} MB; body limit {limit / MB:.0f} MB\n")
    print(harness.table(rows, ["requests", "statuses", "peak RSS growth (MB)", "seconds"]))


if __name__ == "__main__":
    main()
