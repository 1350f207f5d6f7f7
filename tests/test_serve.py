"""`manage.py serve`: the web server, a worker and the reaper together; SIGTERM stops them all."""

import re
import signal
import socket
from pathlib import Path

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
