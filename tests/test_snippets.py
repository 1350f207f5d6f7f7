"""The API snippets (playground.web.snippets) are programs that work: curl under bash and sh (dash),
Python and Node run for real against a live server with a real worker, for a model of every input
shape in the catalog; and for every catalog model each sends exactly its input."""

import ast
import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from django.core.files.storage import default_storage
from PIL import Image

from playground.catalog.loading import ENTRIES_DIR
from playground.catalog.models import CatalogEntry
from playground.generations.inputs import parse_reference, shared_input
from playground.generations.models import InputFile, Task
from playground.keys.services import issue_key
from playground.web.snippets import NEW_IDEMPOTENCY_KEY, api_snippets, python_literal

from .helpers import SEED, seed_input

# Everything a shell, Python or JavaScript string could trip on.
TRICKY_PROMPT = "月光下的竹林小径: it's \"quiet\" — costs $5 & `date` $(id) \\n %s \\ 'a'\nsecond line\t🎋"
NODE_MISSING = (
    "node is not on PATH: the JavaScript snippet cannot be run (apt-get install nodejs; .ci/run does)."
)


def png_data_uri(size: tuple[int, int], *, noise: bool = False) -> str:
    """A PNG as a data URI; with noise it does not compress, so it can be made big."""
    if noise:
        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, (40, 120, 200))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# A WebM starts with the EBML magic number: enough for the submit's container check; the local
# engine does not read a reference video.
WEBM_DATA_URI = "data:video/webm;base64," + base64.b64encode(b"\x1a\x45\xdf\xa3" + bytes(60)).decode()
# Over 128 KB, the most one argument of a command may be on Linux: a photo pasted as a data URI.
BIG_PNG = png_data_uri((256, 256), noise=True)
assert len(BIG_PNG) > 128 * 1024

# One task input for each input shape in the catalog, kept small (video renders take time).
SHAPES = {
    "non-ascii-prompt-with-quotes-and-dollars": (
        SEED,
        {"prompt": TRICKY_PROMPT, "size": "1:1", "resolution": "1K", "n": 1},
    ),
    "media-list-and-single-media-as-data-uris": (
        SEED,
        {
            "prompt": "blend",
            "size": "auto",
            "resolution": "1K",
            "image_urls": [BIG_PNG, png_data_uri((64, 48))],
            "mask_url": png_data_uri((32, 32)),
        },
    ),
    "array-of-objects": (
        "wan2-7-r2v",
        {
            "prompt": "月光",
            "size": "1:1",
            "resolution": "720P",
            "duration": 2,
            "image_with_roles": [{"url": png_data_uri((16, 16)), "role": "reference_image"}],
        },
    ),
    "booleans-big-integer-and-empty-prompt-video": (
        "viduq3-pro",
        {
            "prompt": "",
            "aspect_ratio": "1:1",
            "resolution": "540p",
            "duration": 1,
            "audio": False,
            "seed": 4294967295,
        },
    ),
    "video-as-data-uri": (
        "wan2-7-videoedit",
        {"resolution": "720P", "duration": 1, "video_urls": [WEBM_DATA_URI], "seed": 0},
    ),
}

# Checked without a server only: each run of it renders a 4-second 720p video, too slow here.
MORE_SHAPES = {
    "booleans-true-and-false-video": (
        "veo3-1-fast-official",
        {
            "prompt": "a fox",
            "aspect_ratio": "9:16",
            "resolution": "720p",
            "duration": 4,
            "enhance_prompt": True,
            "generate_audio": False,
            "person_generation": "disallow",
            "resize_mode": "crop",
            "sample_count": 1,
        },
    ),
}

# name: (which snippet, the command that runs it, file suffix)
RUNNERS = {
    "bash": ("curl", ["bash"], ".sh"),
    "sh": ("curl", ["sh"], ".sh"),
    "python": ("python", [sys.executable], ".py"),
    "node": ("javascript", ["node"], ".js"),
}


@dataclass
class Run:
    name: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def task_id(self) -> str:
        found = re.search(r"^task: (task_\w+)$", self.stdout, re.M)
        assert found, f"{self.name} printed no task id:\n{self}"
        return found[1]

    @property
    def urls(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith("http")]

    def __str__(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def run_snippets(snippets: dict, names: list[str], tmp_path: Path, **env: str) -> list[Run]:
    """Run the snippets as `names` (RUNNERS) side by side, each from its own file, with `env`."""
    started = []
    for name in names:
        language, command, suffix = RUNNERS[name]
        path = tmp_path / f"{name}-{len(started)}{suffix}"
        path.write_text(snippets[language], encoding="utf-8")
        process = subprocess.Popen(
            [*command, str(path)],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        started.append((name, process))
    runs = []
    for name, process in started:
        try:
            stdout, stderr = process.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        runs.append(Run(name, process.returncode, stdout, stderr))
    return runs


def same_json(a, b) -> bool:
    """Equal as JSON: unlike ==, True is not 1 here."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def with_data_uris(task_input):
    """A task's input with each input file it references (a data URI sent is stored as one) back
    as the data URI of its bytes: what the snippet sent."""

    def back(value: str) -> str:
        reference = parse_reference(value)
        if reference is None:
            return value
        row = InputFile.objects.get(pk=reference.id, name=reference.name)
        with default_storage.open(row.file, "rb") as handle:
            return f"data:{row.content_type};base64,{base64.b64encode(handle.read()).decode()}"

    return map_strings(task_input, back)


def map_strings(value, change):
    """`value` (JSON data) with every string passed through `change`."""
    if isinstance(value, dict):
        return {key: map_strings(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [map_strings(item, change) for item in value]
    return change(value) if isinstance(value, str) else value


def runnable(names: list[str]) -> list[str]:
    return [name for name in names if shutil.which(RUNNERS[name][1][0])]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("model", "task_input"), SHAPES.values(), ids=SHAPES.keys())
def test_it_runs_each_snippet_to_a_new_succeeded_task_with_exactly_that_input(
    model, task_input, live_server, worker, user, catalog, tmp_path
):
    key = issue_key(user, name="snippets").secret
    snippets = api_snippets(live_server.url, model, task_input)

    runs = run_snippets(snippets, runnable(list(RUNNERS)), tmp_path, PLAYGROUND_API_KEY=key)

    assert len({run.task_id for run in runs}) == len(runs) == Task.objects.count(), "each run is a new task"
    for run in runs:
        assert run.returncode == 0, f"{run.name}: {run}"
        task = Task.objects.select_related("model").get(pk=run.task_id)
        assert task.status == "succeeded", f"{run.name}: {task.error}\n{run}"
        assert same_json(with_data_uris(task.input), task_input), f"{run.name} sent another input"
        files = [item["file"].rsplit("/", 1)[-1] for item in task.output[task.model.output_key]]
        assert [urlsplit(url).path for url in run.urls] == [f"/files/{task.pk}/{name}" for name in files], run
        download = httpx.get(run.urls[0], timeout=10)  # signed: no key needed
        assert download.status_code == 200, run.urls[0]
        assert download.headers["Content-Type"] == (
            "video/webm" if task.model.kind == "video" else "image/png"
        )
    if not shutil.which("node"):
        pytest.fail(NODE_MISSING)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_code_of_a_task_with_an_uploaded_file_sends_the_same_file_again(
    live_server, worker, user, catalog, tmp_path, django_capture_on_commit_callbacks
):
    """Shown as code, a task's input files are signed links, not base64: the code stays small,
    and running it makes a task with the very same input file (no copy)."""
    from playground.generations.services import submit_task

    with django_capture_on_commit_callbacks(execute=True):
        original = submit_task(
            user, SEED, seed_input(image_urls=[BIG_PNG]), request_id="req_1", base_url=live_server.url
        ).task
    entry = CatalogEntry.objects.get(slug=SEED)
    snippets = api_snippets(
        live_server.url, SEED, shared_input(entry, original.input, live_server.url, user.pk)
    )
    assert all("base64" not in code and "?token=" in code for code in snippets.values())

    key = issue_key(user, name="snippets").secret
    runs = run_snippets(snippets, runnable(["bash", "python"]), tmp_path, PLAYGROUND_API_KEY=key)

    for run in runs:
        assert run.returncode == 0, f"{run.name}: {run}"
        task = Task.objects.get(pk=run.task_id)
        assert task.status == "succeeded", f"{run.name}: {task.error}\n{run}"
        assert task.input == original.input  # the same reference, kept without its token
    assert InputFile.objects.count() == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_re_sending_the_same_request_with_its_key_replays_the_task(
    live_server, worker, user, catalog, tmp_path
):
    key = issue_key(user, name="snippets").secret
    snippets = api_snippets(live_server.url, SEED, seed_input(prompt="only once"))
    pinned = {
        language: code.replace(NEW_IDEMPOTENCY_KEY[language], '"the-same-key"')
        for language, code in snippets.items()
    }
    assert all(pinned[language] != snippets[language] for language in snippets)

    first = run_snippets(pinned, ["bash"], tmp_path, PLAYGROUND_API_KEY=key)
    again = run_snippets(pinned, runnable(list(RUNNERS)), tmp_path, PLAYGROUND_API_KEY=key)

    assert Task.objects.count() == 1
    task = Task.objects.get()
    for run in first + again:
        assert (run.returncode, run.task_id) == (0, task.pk), f"{run.name}: {run}"
        assert run.urls and f"/files/{task.pk}/" in run.urls[0]
    assert task.status == "succeeded" and task.cost_actual is not None
    if not shutil.which("node"):
        pytest.fail(NODE_MISSING)


@pytest.mark.django_db(transaction=True)
def test_a_refused_request_makes_every_snippet_exit_non_zero_with_the_reason(live_server, catalog, tmp_path):
    """A script must be able to tell: a wrong key is not a success."""
    snippets = api_snippets(live_server.url, SEED, seed_input())
    wrong_key = "pg_live_" + "A" * 38
    for run in run_snippets(snippets, runnable(list(RUNNERS)), tmp_path, PLAYGROUND_API_KEY=wrong_key):
        assert run.returncode != 0, f"{run.name}: {run}"
        assert "invalid_key" in run.stdout + run.stderr, f"{run.name}: {run}"
    assert not Task.objects.exists()


# Without a server: what each snippet sends, for every model's example input in the catalog.
CATALOG_EXAMPLES = {
    path.stem: json.loads(path.read_text(encoding="utf-8"))["example_input"]
    for path in sorted(ENTRIES_DIR.glob("*.json"))
}
STUB_ANSWER = '{"task_id": "task_stub", "status": "failed", "error": {"code": "stub", "message": "stub"}}'
# Stand-ins for curl, urllib and fetch that write down the submit (headers and body) to $SENT and
# answer with a failed task, so the snippet stops at once.
FAKE_CURL = f"""#!/bin/sh
case "$*" in *--data-binary*) printf '%s\\n' "$@" > "$SENT.args"; cat > "$SENT" ;; esac
printf '%s' '{STUB_ANSWER}'
"""
PYTHON_STUB = f"""
import io, os, pathlib, runpy, sys, urllib.request

def urlopen(request):
    if request.data is not None:
        sent = pathlib.Path(os.environ["SENT"])
        sent.write_bytes(request.data)
        headers = [f"{{name}}: {{value}}" for name, value in request.header_items()]
        pathlib.Path(f"{{sent}}.args").write_text("\\n".join(headers))
    return io.BytesIO({STUB_ANSWER!r}.encode())

urllib.request.urlopen = urlopen
runpy.run_path(sys.argv[1], run_name="__main__")
"""
NODE_STUB = f"""
const fs = require("node:fs");
globalThis.fetch = async (url, init) => {{
  if (init.body !== undefined) {{
    fs.writeFileSync(process.env.SENT, init.body);
    const headers = Object.entries(init.headers).map(([name, value]) => `${{name}}: ${{value}}`);
    fs.writeFileSync(process.env.SENT + ".args", headers.join("\\n"));
  }}
  return {{ ok: true, status: 200, json: async () => JSON.parse({STUB_ANSWER!r}) }};
}};
"""


def sent_by(name: str, code: str, tmp_path: Path) -> tuple[dict, str]:
    """(the JSON body, the header lines or curl arguments) the snippet run as `name` submits."""
    language, command, suffix = RUNNERS[name]
    script = tmp_path / f"snippet{suffix}"
    script.write_text(code, encoding="utf-8")
    sent = tmp_path / f"sent-{name}"
    env = {**os.environ, "PLAYGROUND_API_KEY": "pg_live_example", "SENT": str(sent)}
    if language == "curl":
        (tmp_path / "bin").mkdir(exist_ok=True)
        (tmp_path / "bin" / "curl").write_text(FAKE_CURL)
        (tmp_path / "bin" / "curl").chmod(0o755)
        env["PATH"] = f"{tmp_path / 'bin'}{os.pathsep}{env['PATH']}"
    elif language == "python":
        (tmp_path / "stub.py").write_text(PYTHON_STUB)
        command = [*command, str(tmp_path / "stub.py")]
    else:
        (tmp_path / "stub.js").write_text(NODE_STUB)
        command = [*command, "--require", str(tmp_path / "stub.js")]
    result = subprocess.run(
        [*command, str(script)], env=env, capture_output=True, text=True, encoding="utf-8", timeout=30
    )
    assert "task: task_stub" in result.stdout, f"{name}: {result.stdout}\n{result.stderr}"
    assert "stub" in result.stderr, f"{name} did not report the failed task: {result.stderr}"
    return json.loads(sent.read_text(encoding="utf-8")), Path(f"{sent}.args").read_text(encoding="utf-8")


INPUTS = {**{slug: (slug, data) for slug, data in CATALOG_EXAMPLES.items()}, **SHAPES, **MORE_SHAPES}


@pytest.mark.parametrize("name", RUNNERS)
@pytest.mark.parametrize(("model", "task_input"), INPUTS.values(), ids=INPUTS.keys())
def test_it_sends_exactly_the_input_with_the_key_and_an_idempotency_key(model, task_input, name, tmp_path):
    if name == "node" and not shutil.which("node"):
        pytest.fail(NODE_MISSING)
    snippets = api_snippets("http://play.example.com/", model, task_input)

    body, headers = sent_by(name, snippets[RUNNERS[name][0]], tmp_path)

    assert same_json(body, {"model": model, "input": task_input})
    # (urllib writes header names as "Idempotency-key")
    assert re.search(r"^Authorization: Bearer pg_live_example$", headers, re.M)
    assert re.search(r"^Content-Type: application/json$", headers, re.M | re.I)
    assert re.search(r"^Idempotency-Key: [0-9a-f-]{32,36}$", headers, re.M | re.I)


def test_each_run_makes_a_new_idempotency_key(tmp_path):
    snippets = api_snippets("http://play.example.com", SEED, seed_input())
    for name in runnable(["bash", "python", "node"]):
        keys = {
            re.search(
                r"Idempotency-key: (\S+)", sent_by(name, snippets[RUNNERS[name][0]], tmp_path)[1], re.I
            )[1]
            for _ in range(2)
        }
        assert len(keys) == 2, name


@pytest.mark.parametrize(
    "value",
    [
        {"prompt": TRICKY_PROMPT, "flag": True, "off": False, "none": None, "n": 4294967295, "x": 0.5},
        {"nested": [{"url": "data:,", "role": "r"}, [], {}], "empty": "", "line": "a\u2028b\x00c\x7f"},
    ],
)
def test_python_literal_is_python_for_the_same_data(value):
    assert same_json(ast.literal_eval(python_literal(value)), value)


def test_python_literal_reads_like_python():
    literal = python_literal({"on": True, "off": False, "none": None, "list": [1]})
    assert (
        literal
        == '{\n    "on": True,\n    "off": False,\n    "none": None,\n    "list": [\n        1,\n    ],\n}'
    )
