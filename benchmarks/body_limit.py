"""Memory of the web process under large requests: bodies refused for their size, submits just under
the limit, and a 2 GB "download all".

    .venv/bin/python -m benchmarks.body_limit

Serves the app with production settings and one gunicorn worker (so one process takes every
request) and reads that worker's peak resident set (VmHWM in /proc/<pid>/status, reset through
/proc/<pid>/clear_refs before each row) and the bytes it read from and wrote to files (rchar /
wchar in /proc/<pid>/io, which leave out sockets: a body spooled to disk shows up as written, a
stored input file as written, a zip's outputs as read). Rows:

- 200 MB bodies announced by Content-Length, JSON to the API and multipart to the playground form:
  refused (413) before a byte is read, so nothing is parsed or spooled;
- 200 MB bodies sent chunked (no length): read up to the limit, then refused;
- submits just under PLAYGROUND_MAX_BODY_BYTES that succeed: 14 reference images as data URIs
  (API) and as uploads (form), then one 20 MB image each way; the goal is a peak under 2x the body;
- "download all" of a task with four 512 MB videos: a 2 GB zip streamed from storage.
"""

import argparse
import base64
import hashlib
import io
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from PIL import Image

from . import harness

MB = 1024 * 1024
BOUNDARY = "----playground-bench"


def status_of(pid: int, field: str) -> float:
    """A /proc/<pid>/status size field (VmHWM, VmRSS) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def io_of(pid: int) -> dict[str, int]:
    lines = Path(f"/proc/{pid}/io").read_text().splitlines()
    return {name: int(value) for name, value in (line.split(": ") for line in lines)}


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


class Measure:
    """Peak RSS growth (over the RSS at the start: the peak is reset first) and bytes read and
    written by the worker over a block of requests."""

    def __init__(self, pid: int):
        self.pid = pid

    def __enter__(self) -> "Measure":
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        self.rss, self.io, self.began = status_of(self.pid, "VmRSS"), io_of(self.pid), time.monotonic()
        return self

    def __exit__(self, *exc_info) -> None:
        self.seconds = time.monotonic() - self.began
        self.growth = status_of(self.pid, "VmHWM") - self.rss
        after = io_of(self.pid)
        self.read = (after["rchar"] - self.io["rchar"]) / MB
        self.written = (after["wchar"] - self.io["wchar"]) / MB


def filler(head: bytes, total: int, tail: bytes = b"") -> Iterator[bytes]:
    """`total` bytes: `head`, then spaces, then `tail`, a megabyte at a time."""
    yield head
    left = total - len(head) - len(tail)
    while left > 0:
        yield b" " * min(MB, left)
        left -= MB
    yield tail


def multipart_head(field: str, name: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()


def multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    for field, name, content in files:
        parts.append(multipart_head(field, name) + content + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def noise_png(side: int, seed: str) -> bytes:
    """A PNG that does not compress (3 bytes a pixel), like a photo's worth of detail."""
    pixels = hashlib.shake_256(f"{side}-{seed}".encode()).digest(side * side * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def pngs_filling(budget: int, count: int, *, encoded: bool, name: str) -> list[bytes]:
    """`count` noise PNGs (all different, and different for each `name`) whose total (base64 if
    `encoded`) comes just under `budget` bytes."""
    per_file = budget / count * (0.75 if encoded else 1)
    side = int((per_file / 3) ** 0.5)
    while True:
        images = [noise_png(side, f"{name}-{index}") for index in range(count)]
        total = sum(len(image) for image in images) * (4 / 3 if encoded else 1)
        if total <= budget:
            return images
        side -= 4


def try_post(client: httpx.Client, statuses: list, *args, **kwargs) -> None:
    try:
        statuses.append(client.post(*args, **kwargs).status_code)
    except httpx.HTTPError as exc:  # the server may close the connection while the body is sent
        statuses.append(type(exc).__name__)


def make_big_task(user, sizes: list[int]) -> str:
    """A finished video task of `user` whose outputs are files of `sizes` bytes (sparse: no disk)."""
    from decimal import Decimal

    from django.conf import settings

    from playground.catalog.models import CatalogEntry
    from playground.generations.models import Status, Task, TaskEvent

    entry = CatalogEntry.objects.get(slug="wan2-7-r2v")
    task = Task.objects.create(
        owner=user,
        model=entry,
        input=entry.example_input,
        status=Status.SUCCEEDED,
        engine="local",
        cost_estimate=Decimal("0.1"),
        cost_actual=Decimal("0.1"),
        request_id="req_bench",
        request_hash="0" * 64,
    )
    outputs = []
    for index, size in enumerate(sizes):
        path = Path(settings.MEDIA_ROOT) / "outputs" / task.pk / f"{index}.webm"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            handle.truncate(size)
        outputs.append(
            {"file": f"outputs/{task.pk}/{index}.webm", "content_type": "video/webm", "bytes": size}
        )
    Task.objects.filter(pk=task.pk).update(output={"videos": outputs})
    TaskEvent.objects.create(task=task, kind="status", status=Status.SUCCEEDED, message="Finished.")
    return task.pk


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    data_dir = harness.configure()
    user, secret, session = harness.make_account()
    api_headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    limit = int(os.environ.get("PLAYGROUND_MAX_BODY_BYTES", 32 * MB))
    file_limit = int(os.environ.get("PLAYGROUND_MAX_INPUT_IMAGE_BYTES", 20 * MB))
    play = f"/play/{harness.SEED}"
    scratch = data_dir / "tmp"  # the server's TMPDIR: where Django would spool uploads
    scratch.mkdir()
    print("Making the images…", flush=True)
    json_images = pngs_filling(limit - 4096, 14, encoded=True, name="json")
    form_images = pngs_filling(limit - 8192, 14, encoded=False, name="form")
    big_json_image = pngs_filling(file_limit - 1024, 1, encoded=False, name="big-json")
    big_form_image = pngs_filling(file_limit - 1024, 1, encoded=False, name="big-form")
    warm_up_image = [noise_png(64, "warm-up")]
    zip_task = make_big_task(user, [512 * MB] * 4)
    rows: list[list] = []

    with (
        harness.serving(web_workers=1, task_workers=1, env={"TMPDIR": str(scratch)}) as server,
        httpx.Client(base_url=server.url, timeout=300) as client,
    ):
        worker = gunicorn_worker(server.pid)
        client.cookies.set("sessionid", session)

        def form_fields() -> dict[str, str]:
            page = client.get(play).text
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1]
            return {
                "csrfmiddlewaretoken": token,
                "prompt": "bench",
                "size": "1:1",
                "resolution": "1K",
                "n": "1",
            }

        def api_body(images: list[bytes]) -> bytes:
            uris = [f"data:image/png;base64,{base64.b64encode(image).decode()}" for image in images]
            return json.dumps(
                {"model": harness.SEED, "input": {**harness.SEED_INPUT, "image_urls": uris}}
            ).encode()

        def form_body(images: list[bytes]) -> bytes:
            files = [("image_urls__file", f"ref-{i}.png", image) for i, image in enumerate(images)]
            return multipart(form_fields(), files)

        def row(label: str, body_mb: float | None, send: Callable[[list], None], times: int = 1) -> None:
            statuses: list = []
            with Measure(worker) as measured:
                for _ in range(times):
                    send(statuses)
            ratio = f"{measured.growth / body_mb:.2f}" if body_mb else "-"
            rows.append(
                [
                    label,
                    " ".join(str(s) for s in dict.fromkeys(statuses)),
                    f"{measured.growth:.1f}",
                    ratio,
                    f"{measured.read:.1f}",
                    f"{measured.written:.1f}",
                    f"{measured.seconds:.1f}",
                ]
            )
            print(rows[-1], flush=True)

        # Warm up every path measured below (imports, URL patterns, the first thread of each kind).
        multipart_type = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        assert (
            client.post("/api/v1/tasks", headers=api_headers, content=api_body(warm_up_image)).status_code
            == 201
        )
        assert client.post(play, headers=multipart_type, content=form_body(warm_up_image)).status_code == 302
        with client.stream("GET", f"/tasks/{zip_task}/download.zip") as response:
            next(response.iter_bytes(MB))

        big = 200 * MB
        row(
            "200 MB JSON, Content-Length, x20",
            None,
            lambda s: try_post(
                client,
                s,
                "/api/v1/tasks",
                headers={**api_headers, "Content-Length": str(big)},
                content=filler(b'{"model": "x", "input": {"prompt": "', big, b'"}}'),
            ),
            20,
        )
        row(
            "200 MB multipart upload to the form, Content-Length, x20",
            None,
            lambda s: try_post(
                client,
                s,
                play,
                headers={**multipart_type, "Content-Length": str(big)},
                content=filler(
                    multipart_head("image_urls__file", "huge.png"), big, f"\r\n--{BOUNDARY}--\r\n".encode()
                ),
            ),
            20,
        )
        row(
            "200 MB JSON, chunked (no length), x5",
            None,
            lambda s: try_post(
                client, s, "/api/v1/tasks", headers=api_headers, content=filler(b'{"input": "', big, b'"}')
            ),
            5,
        )
        row(
            "200 MB multipart upload to the form, chunked, x5",
            None,
            lambda s: try_post(
                client,
                s,
                play,
                headers=multipart_type,
                content=filler(
                    multipart_head("image_urls__file", "huge.png"), big, f"\r\n--{BOUNDARY}--\r\n".encode()
                ),
            ),
            5,
        )
        assert not any(scratch.iterdir()), "a temporary file was left behind"

        for label, make_body, images, path, headers in (
            ("API: 14 images as data URIs", api_body, json_images, "/api/v1/tasks", api_headers),
            ("form: 14 images uploaded", form_body, form_images, play, multipart_type),
            ("API: one 20 MB image as a data URI", api_body, big_json_image, "/api/v1/tasks", api_headers),
            ("form: one 20 MB image uploaded", form_body, big_form_image, play, multipart_type),
        ):
            body = make_body(images)
            assert len(body) <= limit, (label, len(body), limit)
            row(
                f"{label} ({len(body) / MB:.1f} MB body)",
                len(body) / MB,
                lambda s, body=body, path=path, headers=headers: try_post(
                    client, s, path, headers=headers, content=body
                ),
            )

        def download(statuses: list) -> None:
            received = 0
            with client.stream("GET", f"/tasks/{zip_task}/download.zip") as response:
                for chunk in response.iter_bytes(MB):
                    received += len(chunk)
            statuses.append(response.status_code)
            assert received == int(response.headers["Content-Length"]) > 2 * 1024 * MB, received

        row("download all: 4 x 512 MB videos as one 2 GB zip", None, download)

    from playground.generations.models import Task

    stored = max(len(json.dumps(task.input)) for task in Task.objects.all())
    print()
    print(harness.machine())
    print(f"body limit {limit / MB:.0f} MB, per-file limit {file_limit / MB:.0f} MB; one gunicorn worker")
    print(time.strftime("Date: %Y-%m-%d %H:%M UTC\n", time.gmtime()))
    header = [
        "requests",
        "statuses",
        "peak RSS growth (MB)",
        "x body",
        "file reads (MB)",
        "file writes (MB)",
        "seconds",
    ]
    print(harness.table(rows, header))
    print(f"\nThe largest task input stored (its row's JSON): {stored / 1024:,.1f} KB")


if __name__ == "__main__":
    main()
