"""`manage.py serve`: the web server, a worker and the reaper together; SIGTERM stops them all."""

import os
import re
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from playground.generations.models import Task

from .helpers import started_by_dead_worker, wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, grandchildren: gunicorn's own workers)."""
    parents = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            found = re.search(r"^PPid:\s+(\d+)$", status.read_text(), re.M)
        except OSError:
            continue
        if found:
            parents[int(status.parent.name)] = int(found[1])
    below, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        below += children
        frontier += children
    return below


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_serve_recovers_a_dead_workers_task_and_sigterm_stops_everything(api, spawn):
    task_id = api.submit(n=1).json()["task_id"]
    started_by_dead_worker(task_id)
    serve = spawn("serve", "--port", free_port(), "--web-workers", 1, PLAYGROUND_REAPER_INTERVAL=0.2)
    assert wait_for(lambda: Task.objects.get(pk=task_id).status == "succeeded", timeout=30)
    assert Task.objects.get(pk=task_id).attempts == 2
    processes = descendants(serve.pid)
    commands = [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode() for pid in processes]
    assert sum("reap_tasks --loop" in command for command in commands) == 1
    assert sum("db_worker" in command for command in commands) == 1
    serve.send_signal(signal.SIGTERM)
    assert serve.wait(timeout=30) == 0
    assert [pid for pid in processes if Path(f"/proc/{pid}").exists()] == []


def worker_pids(serve_pid: int) -> list[int]:
    return [
        pid
        for pid in descendants(serve_pid)
        if b"db_worker" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[2:3]
    ]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_under_serve_is_restarted_the_web_keeps_answering_and_its_task_ends(api, spawn):
    port = free_port()
    serve = spawn(
        "serve",
        "--port",
        port,
        "--web-workers",
        1,
        PLAYGROUND_LOCAL_ENGINE_DELAY=2,
        PLAYGROUND_TASK_LEASE=2,
        PLAYGROUND_TASK_HEARTBEAT=0.5,
        PLAYGROUND_REAPER_INTERVAL=0.3,
    )
    healthz = f"http://127.0.0.1:{port}/healthz"
    assert wait_for(lambda: answers(healthz), timeout=30)
    task_id = api.submit(n=1).json()["task_id"]
    assert wait_for(lambda: Task.objects.get(pk=task_id).status == "processing", timeout=30)
    [killed] = worker_pids(serve.pid)
    os.kill(killed, signal.SIGKILL)  # as the OOM killer would

    answered = [answers(healthz) for _ in range(10) if not time.sleep(0.2)]  # the next 2 s
    assert all(answered), answered
    assert wait_for(lambda: worker_pids(serve.pid) not in ([], [killed]), timeout=10), "no new worker"
    assert wait_for(lambda: Task.objects.get(pk=task_id).status == "succeeded", timeout=30)
    assert Task.objects.get(pk=task_id).attempts == 2
    assert serve.poll() is None
    assert f"task worker 1 (pid {killed}) was killed by SIGKILL; restarting in 0.5 s" in serve.log.read_text()
    serve.send_signal(signal.SIGTERM)
    assert serve.wait(timeout=30) == 0


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
