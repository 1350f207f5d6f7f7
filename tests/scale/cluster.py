"""Several playground hosts on one machine, sharing only PostgreSQL and an S3-compatible bucket.

What production looks like on N hosts (README, "Scaling and deployment"), each part a real process:
the database is the machine's PostgreSQL cluster (a fresh database per run); the bucket is moto's
standalone S3 server on 127.0.0.1, the outside world faked on loopback as the upstream platform is
elsewhere; web hosts are gunicorn and worker hosts `db_worker`, each with its own empty data folder
as a separate machine would have, and a reaper. The bucket is reached through `Link`, a TCP path
the tests can cut (the bucket unreachable) and restore; PostgreSQL is stopped and started with
`pg_ctlcluster`, as an operator restarts it.

Used by tests/scale (`make test-scale`) and benchmarks/scale_out.py.
"""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import boto3
import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
BUCKET = "playground-scale"
SEED = "gemini-3-pro-image-preview-official"
PASSWORD = "scale-test-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except (httpx.HTTPError, psycopg.Error):
            pass
        time.sleep(interval)
    return False


class Link:
    """A TCP path from 127.0.0.1:`port` to 127.0.0.1:`target`. `cut()` makes the target unreachable
    (new connections refused, open ones dropped) until `restore()`."""

    def __init__(self, target: int):
        self.target, self.port = target, free_port()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            live, self._open = self._open, set()
        for sock in live:
            _close(sock)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                _close(sock)
                with self._lock:
                    self._open.discard(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@dataclass
class Process:
    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    popen: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def stop(self, timeout: float = 20) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the process and every live process of its
        session (gunicorn's workers), from /proc."""
        if self.popen is None:
            return 0.0
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == self.popen.pid:  # the process group its session leader started
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


@dataclass
class Postgres:
    """The machine's PostgreSQL cluster (`.ci/postgres` sets it up) and a fresh database in it."""

    base_url: str
    name: str = "playground_scale"

    @property
    def url(self) -> str:
        return urlunsplit(urlsplit(self.base_url)._replace(path=f"/{self.name}"))

    def create(self) -> None:
        with psycopg.connect(self.base_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.name}"')

    def query(self, sql: str, *params) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(sql, params).fetchall()

    def cluster(self) -> tuple[str, str]:
        """(version, name) of the cluster listening on the URL's port."""
        port = str(urlsplit(self.base_url).port or 5432)
        lines = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True)
        for line in lines.stdout.splitlines():
            version, name, cluster_port, *_ = line.split()
            if cluster_port == port:
                return version, name
        raise RuntimeError(f"no PostgreSQL cluster on port {port}: {lines.stdout}")

    def stop(self) -> None:
        subprocess.run(["pg_ctlcluster", *self.cluster(), "stop", "-m", "fast"], check=True)

    def start(self) -> None:
        subprocess.run(["pg_ctlcluster", *self.cluster(), "start"], check=True)
        assert wait_until(lambda: self.query("SELECT 1"), timeout=60), "PostgreSQL did not come back"


@dataclass
class Cluster:
    """`webs` web hosts and `workers` worker hosts (plus a reaper) over one database and one bucket.

    `settings`: environment every host gets on top of the shared one (e.g. a shorter lease). Each
    host's data folder starts empty and must stay free of user files: `local_files()`."""

    root: Path
    database: Postgres
    webs: int = 2
    workers: int = 2
    settings: dict[str, str] = field(default_factory=dict)
    presigned_webs: tuple[int, ...] = ()  # which web hosts (by index) redirect to presigned URLs
    processes: list[Process] = field(default_factory=list)
    key: str = ""

    def start(self) -> "Cluster":
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        self.database.create()
        self.moto = Process(
            "s3",
            [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(free_port())],
            {**os.environ},
            self.root / "s3.log",
        )
        self.moto.port = int(self.moto.command[-1])
        self.moto.start()
        assert wait_until(lambda: httpx.get(f"{self.moto.url}/moto-api/").status_code == 200, 30), self.log(
            "s3"
        )
        self.s3().create_bucket(Bucket=BUCKET)
        self.link = Link(self.moto.port)

        self.run_once("migrate", "migrate", "--no-input")
        self.run_once("migrate", "load_catalog")
        self.run_once(
            "migrate", "createsuperuser", "--no-input", "--username", "ops", "--email", "ops@example.com"
        )
        self.key = self.run_once("migrate", "issue_key", "ops", "--name", "scale test").strip()

        for index in range(self.webs):
            name = f"web-{index + 1}"
            port = free_port()
            env = self.host_env(
                name, PLAYGROUND_S3_PRESIGNED="true" if index in self.presigned_webs else "false"
            )
            command = [
                PYTHON,
                "-m",
                "gunicorn",
                "playground.wsgi",
                "--config",
                "python:playground.gunicorn_conf",
            ]
            command += ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4"]
            self.processes.append(Process(name, command, env, self.root / f"{name}.log", port=port))
        for index in range(self.workers):
            name = f"worker-{index + 1}"
            command = [
                PYTHON,
                "manage.py",
                "db_worker",
                "--no-reload",
                "--no-startup-delay",
                "--interval",
                "0.1",
            ]
            command += ["--queue-name", "default", "--worker-id", name]
            self.processes.append(Process(name, command, self.host_env(name), self.root / f"{name}.log"))
        reaper = [PYTHON, "manage.py", "reap_tasks", "--loop", "--interval", "1"]
        self.processes.append(Process("reaper", reaper, self.host_env("reaper"), self.root / "reaper.log"))
        for process in self.processes:
            process.start()
        for web in self.web_hosts:
            assert wait_until(lambda web=web: self.api(web).get("/api/v1/models").status_code == 200, 60), (
                self.log(web.name)
            )
        for worker in self.worker_hosts:
            assert wait_until(lambda worker=worker: "Starting worker" in worker.log.read_text(), 60), (
                self.log(worker.name)
            )
        return self

    def stop(self) -> None:
        for process in self.processes:
            process.stop()
        if hasattr(self, "link"):
            self.link.cut()
        if hasattr(self, "moto"):
            self.moto.stop()

    # --- Hosts ----------------------------------------------------------------------------------

    def host_env(self, name: str, **extra: str) -> dict[str, str]:
        data = self.root / name
        data.mkdir(exist_ok=True)
        return {
            "PATH": os.environ["PATH"],
            "HOME": str(data),
            "PLAYGROUND_ENV_FILE": str(self.root / "no.env"),  # nothing from the checkout's .env
            "SECRET_KEY": "scale-test-secret-key-identical-on-every-host",
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "DATABASE_URL": self.database.url,
            "PLAYGROUND_DATA_DIR": str(data),
            "PLAYGROUND_STORAGE_URL": (
                f"s3://{BUCKET}/media?endpoint=http://127.0.0.1:{self.link.port}&region=us-east-1&addressing=path"
            ),
            "AWS_ACCESS_KEY_ID": "scale-test",
            "AWS_SECRET_ACCESS_KEY": "scale-test",
            "PLAYGROUND_API_RATE_LIMIT": "100000/60",
            "PLAYGROUND_MAX_RUNNING_PER_OWNER": "0",
            "PLAYGROUND_REAPER_INTERVAL": "1",
            **self.settings,
            **extra,
        }

    def run_once(self, host: str, *command: str) -> str:
        env = self.host_env(host, DJANGO_SUPERUSER_PASSWORD=PASSWORD)
        done = subprocess.run(
            [PYTHON, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    @property
    def web_hosts(self) -> list[Process]:
        return [p for p in self.processes if p.name.startswith("web-")]

    @property
    def worker_hosts(self) -> list[Process]:
        return [p for p in self.processes if p.name.startswith("worker-")]

    def api(self, web: Process) -> httpx.Client:
        return httpx.Client(base_url=web.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=30)

    def signed_in(self, web: Process) -> httpx.Client:
        """A browser's session on `web`, signed in as the cluster's account."""
        browser = httpx.Client(base_url=web.url, timeout=30)
        form = browser.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        fields = {"csrfmiddlewaretoken": token, "username": "ops", "password": PASSWORD}
        answer = browser.post(
            "/accounts/login/", data=fields, headers={"Referer": f"{web.url}/accounts/login/"}
        )
        assert answer.status_code == 302, answer.text[:500]
        return browser

    def s3(self):
        return boto3.client(
            "s3",
            endpoint_url=self.moto.url,
            region_name="us-east-1",
            aws_access_key_id="scale-test",
            aws_secret_access_key="scale-test",
        )

    def bucket_keys(self, prefix: str = "") -> list[str]:
        pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"media/{prefix}")
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def local_files(self) -> list[Path]:
        """User files found in any host's own data folder (there should be none)."""
        return [path for path in self.root.glob("*/media/**/*") if path.is_file()]

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text()[-4000:] if path.exists() else ""

    # --- Tasks -----------------------------------------------------------------------------------

    def submit(self, web: Process, **input_fields) -> str:
        body = {
            "model": SEED,
            "input": {
                "prompt": "a lighthouse at dusk",
                "size": "1:1",
                "resolution": "1K",
                "n": 1,
                **input_fields,
            },
        }
        with self.api(web) as client:
            response = client.post("/api/v1/tasks", json=body)
        assert response.status_code == 201, response.text
        return response.json()["task_id"]

    def task(self, web: Process, task_id: str) -> dict:
        with self.api(web) as client:
            response = client.get(f"/api/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def ended(self, task_ids: list[str]) -> dict[str, dict]:
        """Each task's API body once every one has ended (succeeded, failed or cancelled)."""
        rows = self.database.query(
            "SELECT id, status FROM generations_task WHERE id = ANY(%s)", list(task_ids)
        )
        if len(rows) != len(task_ids) or any(status in ("queued", "processing") for _, status in rows):
            return {}
        return {task_id: self.task(self.web_hosts[0], task_id) for task_id in task_ids}
