"""A fake MindVideo platform on 127.0.0.1 for the failure cases a real one will not produce on demand.

It follows the contract (`POST /api/v1/tasks` with Idempotency-Key replay, `GET /api/v1/tasks/{id}`,
`/events`, `/cancel`, output files) and can be scripted per route: `replies[route]` are answered
first, in order, then `always[route]` if set, else the contract's behaviour. Routes: submit, poll,
events, cancel, file.
"""

import io
import json
import re
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image


def png_bytes(size=(8, 6), colour=(200, 40, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # a dict or list (sent as JSON), bytes or str (sent as they are)
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    drip: float = 0.0  # seconds between 16-byte pieces of the body
    length: bool = True  # send Content-Length (else the body ends when the connection closes)


@dataclass
class Seen:
    method: str
    path: str
    route: str
    headers: dict
    body: Any


class FakeUpstream:
    def __init__(self, key: str = "mv_live_fake_key_9f3a"):
        self.key = key
        self.tasks: dict[str, dict] = {}
        self.by_idempotency_key: dict[str, str] = {}
        self.requests: list[Seen] = []
        self.replies: dict[str, list[Reply]] = defaultdict(list)
        self.always: dict[str, Reply] = {}
        # Statuses a new task moves through, one per poll; ("processing", 0.4) also reports its
        # progress, as a MindVideo-compatible platform may (the contract has no such field).
        self.plan: list[str | tuple[str, float]] = ["processing", "succeeded"]
        self.cost_actual = 0.0987
        self.output_key = "images"
        self.error = {"code": "content_policy", "message": "The prompt was refused by the safety filter."}
        self.output_urls = lambda task_id: [f"{self.base_url}/files/{task_id}/0.png"]
        self.files: dict[str, Reply] = {}
        self.file_auth: str | None = None  # when set, files need this exact Authorization header
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # a client that gave up: fine
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def seen(self, route: str) -> list[Seen]:
        return [r for r in self.requests if r.route == route]

    # --- The contract -------------------------------------------------------------------------------

    def answer(self, seen: Seen) -> Reply:
        if seen.route == "file":
            return self._file(seen)
        if seen.headers.get("authorization") != f"Bearer {self.key}":
            return Reply(401, {"error": {"code": "invalid_key", "message": "The API key is not valid."}})
        if seen.route == "submit":
            return self._submit(seen)
        task_id = seen.path.split("/")[4]
        task = self.tasks.get(task_id)
        if task is None:
            return Reply(404, {"error": {"code": "task_not_found", "message": "No such task."}})
        if seen.route == "poll":
            self._advance(task)
            return Reply(200, self.public(task))
        if seen.route == "events":
            events = [{"type": "status", "status": s, "message": ""} for s in task["history"]]
            events.insert(1, {"type": "message", "status": "queued", "message": "Warming up the fake GPU."})
            return Reply(200, {"data": events})
        if seen.route == "cancel":
            if task["status"] in ("succeeded", "failed", "cancelled"):
                return Reply(409, {"error": {"code": "task_not_cancellable", "message": "It ended."}})
            task["status"] = "cancelled"
            task["history"].append("cancelled")
            return Reply(200, self.public(task))
        return Reply(404, {"error": {"code": "not_found", "message": "No such resource."}})

    def _submit(self, seen: Seen) -> Reply:
        key = seen.headers.get("idempotency-key")
        if key and key in self.by_idempotency_key:
            return Reply(200, self.public(self.tasks[self.by_idempotency_key[key]]))
        task_id = f"task_up{len(self.tasks) + 1}"
        self.tasks[task_id] = {
            "request_id": f"req_up{len(self.tasks) + 1}",
            "task_id": task_id,
            "status": "queued",
            "cost_estimate": 0.1206,
            "cost_actual": None,
            "output": None,
            "error": None,
            "submitted": seen.body,
            "plan": list(self.plan),
            "history": ["queued"],
        }
        if key:
            self.by_idempotency_key[key] = task_id
        return Reply(201, self.public(self.tasks[task_id]))

    def _advance(self, task: dict) -> None:
        if task["status"] in ("succeeded", "failed", "cancelled") or not task["plan"]:
            return
        step = task["plan"].pop(0)
        task["status"], progress = step if isinstance(step, tuple) else (step, None)
        if progress is not None:
            task["progress"] = progress
        task["history"].append(task["status"])
        if task["status"] == "succeeded":
            task["cost_actual"] = self.cost_actual
            task["output"] = {self.output_key: [{"url": url} for url in self.output_urls(task["task_id"])]}
        elif task["status"] == "failed":
            task["cost_actual"] = 0
            task["error"] = self.error

    def _file(self, seen: Seen) -> Reply:
        if self.file_auth is not None and seen.headers.get("authorization") != self.file_auth:
            return Reply(403, {"error": {"code": "forbidden", "message": "No."}})
        if seen.path in self.files:
            return self.files[seen.path]
        if re.fullmatch(r"/files/task_up\d+/\d+\.png", seen.path):
            return Reply(200, png_bytes(), "image/png")
        return Reply(404, {"error": {"code": "not_found", "message": "No such file."}})

    @staticmethod
    def public(task: dict) -> dict:
        keys = ("request_id", "task_id", "status", "cost_estimate", "cost_actual", "output", "error")
        return {k: task[k] for k in keys} | ({"progress": task["progress"]} if "progress" in task else {})

    # --- HTTP ---------------------------------------------------------------------------------------

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def _serve(self, method: str) -> None:
                path = self.path.split("?", 1)[0]
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                seen = Seen(
                    method,
                    path,
                    route_of(method, path),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with fake.lock:
                    fake.requests.append(seen)
                    if fake.replies[seen.route]:
                        reply = fake.replies[seen.route].pop(0)
                    elif seen.route in fake.always:
                        reply = fake.always[seen.route]
                    else:
                        reply = fake.answer(seen)
                self._send(reply)

            def _send(self, reply: Reply) -> None:
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body
                if isinstance(payload, dict | list) or payload is None:
                    payload = json.dumps(payload).encode()
                elif isinstance(payload, str):
                    payload = payload.encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                if reply.length:
                    self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if not reply.drip:
                    self.wfile.write(payload)
                    return
                for start in range(0, len(payload), 16):
                    self.wfile.write(payload[start : start + 16])
                    self.wfile.flush()
                    time.sleep(reply.drip)

        return Handler


def route_of(method: str, path: str) -> str:
    if path.startswith("/files/"):
        return "file"
    if method == "POST" and path == "/api/v1/tasks":
        return "submit"
    if method == "POST" and re.fullmatch(r"/api/v1/tasks/[^/]+/cancel", path):
        return "cancel"
    if method == "GET" and re.fullmatch(r"/api/v1/tasks/[^/]+/events", path):
        return "events"
    if method == "GET" and re.fullmatch(r"/api/v1/tasks/[^/]+", path):
        return "poll"
    return "other"


def billed(fake: FakeUpstream) -> float:
    """What the fake platform has charged in all: the cost of every task it finished."""
    with fake.lock:
        return round(sum(t["cost_actual"] or 0 for t in fake.tasks.values() if t["status"] == "succeeded"), 4)


def worker_env(fake: FakeUpstream) -> dict:
    """The environment of a real worker (or reaper) process running tasks on `fake`."""
    return {
        "PLAYGROUND_ENGINE": "mindvideo",
        "MINDVIDEO_BASE_URL": fake.base_url,
        "MINDVIDEO_POLL_INTERVAL": 0.02,
        "MINDVIDEO_TIMEOUT": 5,
        "MINDVIDEO_MAX_RETRIES": 2,
    }
