"""Run the web server, the task workers and the reaper together until Ctrl-C or SIGTERM stops all.

The reaper (`reap_tasks --loop`) recovers the tasks of a worker that died; SIGTERM lets each worker
finish its current task before it exits.
"""

import os
import signal
import subprocess
import sys
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve the web app (gunicorn), task workers (db_worker) and the reaper together; Ctrl-C stops all."

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
        commands = [
            [
                python,
                "-m",
                "gunicorn",
                "playground.wsgi",
                "--bind",
                f"{host}:{port}",
                "--workers",
                str(web_workers),
                "--threads",
                "4",
                "--access-logfile",
                "-",
            ],
        ] + [
            [
                python,
                "manage.py",
                "db_worker",
                "--interval",
                "0.1",
                "--no-reload",
                "--no-startup-delay",
                "--queue-name",
                "default",
            ]
            for _ in range(workers)
        ]
        # One reaper is enough however many workers there are (several would be safe, just redundant).
        commands.append([python, "manage.py", "reap_tasks", "--loop"])
        if not get_user_model().objects.exists():
            self.stdout.write(
                "No account yet. In another terminal:\n"
                f"  {python} manage.py createsuperuser\n"
                f"  {python} manage.py issue_key USERNAME   # an API key for /api/v1\n"
            )
        children = [subprocess.Popen(command) for command in commands]
        self.stdout.write(f"Serving http://{host}:{port} with {workers} task worker(s). Ctrl-C stops all.")
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.2)
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            for child in children:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
        failed = [
            c.args[2] for c in children if c.returncode not in (0, -signal.SIGTERM, None) and not stopping
        ]
        if failed:
            self.stderr.write(f"Stopped because a process exited: {failed}")
            sys.exit(1)
