"""Run the web server, the task workers and the reaper together until Ctrl-C or SIGTERM stops all.

`serve` supervises them: one that dies (a worker killed by the OOM killer on a large video, say) is
logged with its exit status and started again with a back-off, while the others keep running; the
task a dead worker held is recovered by its lease and the reaper (`reap_tasks --loop`). Only Ctrl-C
or SIGTERM stops everything; SIGTERM lets each worker finish its current task before it exits.
"""

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

logger = logging.getLogger("playground.serve")

# A child that dies is started again after 0.5 s, then 1, 2, 4 … up to 30 s while it keeps dying;
# one that ran for a minute is back to the short delay.
FIRST_DELAY, MAX_DELAY, STEADY_AFTER = 0.5, 30.0, 60.0


@dataclass
class Child:
    """One supervised process: started, watched, and started again when it dies."""

    name: str
    command: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    start_at: float = 0.0  # when to (re)start it, if it is not running
    failures: int = field(default=0)

    def start(self) -> None:
        self.process = subprocess.Popen(self.command)
        self.started_at = time.monotonic()

    def check(self, now: float) -> None:
        """Start it when due; note its death and schedule the restart with a back-off."""
        if self.process is None:
            if now >= self.start_at:
                self.start()
            return
        code = self.process.poll()
        if code is None:
            return
        if now - self.started_at >= STEADY_AFTER:
            self.failures = 0
        delay = min(MAX_DELAY, FIRST_DELAY * 2**self.failures)
        self.failures += 1
        logger.error(
            "%s (pid %s) %s; restarting in %g s", self.name, self.process.pid, exit_status(code), delay
        )
        self.process, self.start_at = None, now + delay


def web_command(host: str, port: str, web_workers: str) -> list[str]:
    """gunicorn with playground's settings (playground/gunicorn_conf.py: no forwarded header is
    believed by gunicorn itself, only by Django from a trusted proxy)."""
    return [
        *(sys.executable, "-m", "gunicorn", "playground.wsgi"),
        *("--config", "python:playground.gunicorn_conf", "--bind", f"{host}:{port}"),
        *("--workers", str(web_workers), "--threads", "4", "--access-logfile", "-"),
    ]


def exit_status(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class Command(BaseCommand):
    help = (
        "Serve the web app (gunicorn), task workers (db_worker) and the reaper together, restarting any "
        "that dies; Ctrl-C or SIGTERM stops all."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
        parser.add_argument("--web-workers", default=os.environ.get("WEB_CONCURRENCY", "2"))
        parser.add_argument(
            "--workers",
            type=int,
            default=int(os.environ.get("TASK_WORKERS", "1")),
            help="how many task worker processes",
        )

    def handle(self, *args, host, port, web_workers, workers, **options):
        python = sys.executable
        web = web_command(host, port, web_workers)
        worker = [python, "manage.py", "db_worker", "--interval", "0.1", "--no-reload", "--no-startup-delay"]
        worker += ["--queue-name", "default"]
        children = [Child("web (gunicorn)", web)]
        children += [Child(f"task worker {n}", worker) for n in range(1, workers + 1)]
        # One reaper is enough however many workers there are (several would be safe, just redundant).
        children.append(Child("reaper", [python, "manage.py", "reap_tasks", "--loop"]))
        if not get_user_model().objects.exists():
            self.stdout.write(
                f"No account yet: open http://{host}:{port}/ and create the first one there (it is the\n"
                f"administrator), or run `{python} manage.py createsuperuser` in another terminal.\n"
            )
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for child in children:
            child.start()
        self.stdout.write(f"Serving http://{host}:{port} with {workers} task worker(s). Ctrl-C stops all.")
        try:
            while not stopping:
                now = time.monotonic()
                for child in children:
                    child.check(now)
                time.sleep(0.2)
        finally:
            running = [child.process for child in children if child.process is not None]
            for process in running:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            for process in running:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
