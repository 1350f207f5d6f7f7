"""What every benchmark needs: the production environment, a throwaway database, the app served
the way `manage.py serve` serves it, and wrk.

Each benchmark script calls `configure()` first (it sets the environment and `django.setup()`), so
the script itself, the gunicorn workers and the task workers all share one database and one
SECRET_KEY. Servers are children of the script, listen on 127.0.0.1 only and are stopped with
SIGTERM when the script ends.
"""

import io
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
REPORT_LUA = Path(__file__).with_name("report.lua")
HOST = "127.0.0.1"
SEED = "gemini-3-pro-image-preview-official"
SEED_INPUT = {"prompt": "A red fox crossing fresh snow at dawn", "size": "1:1", "resolution": "1K", "n": 1}


def production_env(data_dir: Path, database_url: str | None = None) -> dict[str, str]:
    """The README's production environment, except PLAYGROUND_HTTPS: it must stay false here
    because the benchmarks speak plain http to 127.0.0.1 (true would redirect every request to
    https and mark cookies Secure). Production behind TLS sets it to true; it changes headers, not
    the work a request does."""
    env = {
        "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        "PLAYGROUND_ENV_FILE": str(data_dir / "no.env"),  # ignore a developer's .env
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": HOST,
        "PLAYGROUND_HTTPS": "false",
        "PLAYGROUND_DATA_DIR": str(data_dir),
        "PLAYGROUND_MEDIA_ROOT": str(data_dir / "media"),
        "BENCH_STATIC_ROOT": str(data_dir / "static"),
        "WHITENOISE_USE_FINDERS": "false",  # production serves collectstatic's compressed files
        "PLAYGROUND_ENGINE": "local",
        # The per-key API rate limit (600 requests a minute by default) would turn a load test into
        # a test of 429s. The limiter still runs; only its ceiling is out of reach.
        "PLAYGROUND_API_RATE_LIMIT": "100000000/60",
        "PLAYGROUND_SIGNIN_RATE_LIMIT": "100000000/60",
        "LOG_LEVEL": "WARNING",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def configure(database_url: str | None = None, *, static: bool = False) -> Path:
    """Point this process (and every child it starts) at a fresh data folder and database with the
    catalog loaded, then set Django up. Returns the data folder (removed at exit)."""
    data_dir = Path(tempfile.mkdtemp(prefix="playground-bench-"))
    os.environ.update(production_env(data_dir, database_url))
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    import atexit

    import django

    atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    django.setup()
    from django.core.management import call_command

    (data_dir / "static").mkdir()
    quiet = io.StringIO()
    call_command("migrate", verbosity=0, interactive=False, stdout=quiet)
    call_command("load_catalog", verbosity=0, stdout=quiet)
    if static:
        call_command("collectstatic", verbosity=0, interactive=False, stdout=quiet)
    return data_dir


def make_account(username: str = "bench") -> tuple:
    """A user, an API key for them (the secret) and a signed-in session cookie value."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    from playground.keys.services import issue_key

    user = get_user_model().objects.create_user(username, password=secrets.token_urlsafe(16))
    client = Client(HTTP_HOST=HOST)
    client.force_login(user)
    return user, issue_key(user, name="bench").secret, client.cookies["sessionid"].value


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by `serve` and every process below it."""
        parents, ticks = {}, {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                parents[int(stat.parent.name)] = int(fields[1])
                ticks[int(stat.parent.name)] = int(fields[11]) + int(fields[12])
        tree, frontier = {self.pid}, [self.pid]
        while frontier:
            parent = frontier.pop()
            children = [pid for pid, ppid in parents.items() if ppid == parent]
            tree.update(children)
            frontier += children
        return sum(ticks.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")


def pinned(cpus: set[int] | None):
    """A `preexec_fn` that keeps a child (and its children) on `cpus`; None: anywhere."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        return None
    return lambda: os.sched_setaffinity(0, cpus)


@contextmanager
def serving(
    *, task_workers: int = 0, web_workers: int = 2, env: dict | None = None, cpus: set[int] | None = None
) -> Iterator[Server]:
    """`manage.py serve` (gunicorn + `task_workers` db_workers + the reaper) on a free port of
    127.0.0.1, until the block ends (then SIGTERM); on the CPUs `cpus` if given."""
    port = free_port()
    command = [
        *(PYTHON, "manage.py", "serve", "--host", HOST, "--port", str(port)),
        *("--web-workers", str(web_workers), "--workers", str(task_workers)),
    ]
    with running(command, port, ready_path="/healthz", env=env, cpus=cpus) as server:
        yield server


@contextmanager
def serving_minimal(
    ready_path: str, *, web_workers: int = 2, cpus: set[int] | None = None
) -> Iterator[Server]:
    """The minimal yardstick (`benchmarks.minimal_settings`) under the very gunicorn command
    `manage.py serve` runs (playground's gunicorn config, `web_workers` processes x 4 threads, access
    log on), without serve's task workers and reaper; on the CPUs `cpus` if given. Ready when
    `ready_path` answers 200."""
    from playground.web.management.commands.serve import web_command

    port = free_port()
    command = web_command(HOST, str(port), str(web_workers))
    env = {"DJANGO_SETTINGS_MODULE": "benchmarks.minimal_settings"}
    with running(command, port, ready_path=ready_path, env=env, cpus=cpus) as server:
        yield server


@contextmanager
def running(
    command: list[str], port: int, *, ready_path: str, env: dict | None, cpus: set[int] | None
) -> Iterator[Server]:
    """Start a server `command` listening on `port` of 127.0.0.1 (stdout, the access log, discarded;
    stderr kept in the data folder), wait until `ready_path` answers 200, and stop it with SIGTERM
    when the block ends."""
    log = Path(os.environ["PLAYGROUND_DATA_DIR"]) / f"server-{port}.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=subprocess.DEVNULL,  # gunicorn's access log: written, as in production, not kept
            stderr=output,
            start_new_session=True,  # Ctrl-C reaches this script, which then stops the server
            preexec_fn=pinned(cpus),
        )
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with suppress(httpx.HTTPError):
                if httpx.get(f"{base}{ready_path}", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Server(base, process.pid)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ensure_wrk() -> str:
    """The path of wrk, installing Debian's package when running as root with apt; otherwise stop
    with the command to run."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk is missing: installing it with apt-get (Debian package `wrk`)…", flush=True)
        install = ["apt-get", "install", "-y", "-qq", "wrk"]
        if subprocess.run(install, check=False, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
            subprocess.run(install, check=False, capture_output=True)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit(
        "wrk is needed: `sudo apt-get install -y wrk` (Debian/Ubuntu), `brew install wrk` (macOS)."
    )


def wrk(
    url: str,
    headers: dict[str, str] | None = None,
    *,
    seconds: int = 5,
    connections: int = 8,
    cpus: set[int] | None = None,
) -> dict:
    """Load `url` for `seconds` with `connections` keep-alive connections from one wrk thread (on
    the CPUs `cpus` if given); returns requests/s, latency percentiles (ms) and error counts."""
    command = [ensure_wrk(), "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s"]
    command += ["-s", str(REPORT_LUA)]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run(
        [*command, url],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
        preexec_fn=pinned(cpus),
    ).stdout
    line = next(line for line in done.splitlines() if line.startswith("WRK_JSON "))
    return json.loads(line.removeprefix("WRK_JSON "))


def percentile(values: list[float], share: float) -> float:
    """The `share` (0..1) percentile by the nearest-rank method."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def summary_ms(values: list[float]) -> str:
    """p50 / p95 / max of durations given in seconds, in milliseconds."""
    return (
        f"p50 {statistics.median(values) * 1000:7.1f} ms   p95 {percentile(values, 0.95) * 1000:7.1f} ms   "
        f"max {max(values) * 1000:7.1f} ms"
    )


def table(rows: list[list], header: list[str]) -> str:
    """A GitHub-flavoured Markdown table, columns padded to line up in a terminal too."""
    cells = [header, *[[str(cell) for cell in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |" for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine() -> str:
    """One line about where the numbers come from."""
    cpu = "unknown CPU"
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with suppress(OSError, ValueError, IndexError):
        kilobytes = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kilobytes / 1024 / 1024:.0f} GB RAM"
    import django

    return (
        f"{os.cpu_count()} CPU cores ({cpu}){memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, Django {django.get_version()}, SQLite {sqlite3.sqlite_version}"
    )
