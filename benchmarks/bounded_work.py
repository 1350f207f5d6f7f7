"""Work one task buys in the worker: peak memory with 14 maximum-size reference images, and the time
of a maximum-length prompt with the largest `n`, next to a small task measured in the same run.

    .venv/bin/python -m benchmarks.bounded_work [--before PATH]

The local engine runs a task as `db_worker` runs it, in a process of its own: the reference images
are input files on disk read through `StoredInput` (as the runner hands them over), the output is
kept by a stand-in for the runner's context. Each row is a fresh process on a fresh data folder; its
peak resident set (VmHWM, reset through /proc/self/clear_refs after a warm-up run) is compared with
its resident set just before the task. Rows:

- no reference image (the yardstick), one 7000x7000 PNG (49 MP, just under the 50 MP cap per
  image), 14 of them (Gemini's `maxItems`) as PNG and as JPEG: with the cap per task raised out of
  reach, to see what the engine itself holds; then 14 PNGs under the default caps;
- a short prompt (the yardstick), the longest prompt a submit takes (10,000 characters) as words
  and as one word, and the issue's 4 MB prompt (as words, and as one word): n=4, 1K.

With `--before PATH` (a checkout of older code, e.g. `git archive <commit> | tar -x -C PATH`) every
row also runs on that code, alternating with this checkout, so both columns come from one run.
"""

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

from . import harness

SIDE = 7000  # 49 MP: the images, just under the default cap per image
RAISED = str(10**12)  # PLAYGROUND_MAX_TASK_PIXELS out of reach: what the engine itself holds
MAX_PROMPT = 10_000  # PLAYGROUND_MAX_TEXT_CHARS' default
WORDS = ["a", "red", "fox", "crossing", "fresh", "snow", "at", "dawn", "under", "a", "pale", "winter", "moon"]

# Runs in the measured process, on the code of the checkout it is started in (its working folder).
CHILD = r"""
import json, os, sys, time
from pathlib import Path

import django

django.setup()
from playground.engines.base import EngineError, EngineJob, StoredInput
from playground.engines.local import LocalEngine

spec = json.loads(sys.argv[1])
entry = json.loads(Path("playground/catalog/entries/gemini-3-pro-image-preview-official.json").read_text())


class Context:
    outputs = 0

    def report(self, message): pass
    def progress(self, fraction, step_done=False): pass
    def should_stop(self): return False
    def was_cancelled(self): return False
    def save_upstream_id(self, upstream_id): pass
    def save_output(self, name, content, content_type, **meta): self.outputs += 1


def job(prompt, n, images):
    stored = {
        f"http://bench/inputs/in_{index:024x}/ref": StoredInput(
            name="ref", content_type="image/png", size=0, read=lambda path=path: Path(path).read_bytes()
        )
        for index, path in enumerate(images)
    }
    data = {"prompt": prompt, "size": "1:1", "resolution": "1K", "n": n}
    if stored:
        data["image_urls"] = list(stored)
    return EngineJob(
        task_id="bench", owner_id=1, model_slug=entry["slug"], kind="image", output_key="images",
        roles=entry["roles"], input_schema=entry["input_schema"], input=data, stored_inputs=stored,
    )


def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024


prompt = Path(spec["prompt"]).read_text()
LocalEngine().run(job("warm up", 1, []), Context())  # imports, fonts
Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
rss, started = status("VmRSS"), time.perf_counter()
context = Context()
try:
    LocalEngine().run(job(prompt, spec["n"], spec["images"]), context)
    outcome = f"{context.outputs} images"
except EngineError as exc:
    outcome = exc.code
seconds = time.perf_counter() - started
print(json.dumps({"growth": status("VmHWM") - rss, "seconds": seconds, "outcome": outcome}))
"""


def large_image(path: Path, image_format: str, shade: int) -> Path:
    """A 7000x7000 image that compresses like the issue's (a PNG of ~160 KB): flat colour and a few
    shapes."""
    image = Image.new("RGB", (SIDE, SIDE), (shade, 90, 160))
    draw = ImageDraw.Draw(image)
    for step in range(8):
        draw.ellipse(
            (step * 700, step * 500, step * 700 + 1500, step * 500 + 1200), fill=(250 - step * 20, 200, 40)
        )
    image.save(path, image_format, **({"quality": 85} if image_format == "JPEG" else {"optimize": True}))
    return path


def measure(code: Path, data_dir: Path, spec: dict, env: dict[str, str]) -> dict:
    """One task in a new process running the code in `code`."""
    with tempfile.TemporaryDirectory(dir=data_dir) as scratch:
        child_env = {
            **{
                key: value
                for key, value in os.environ.items()
                if not key.startswith(("PLAYGROUND_", "DJANGO_"))
            },
            "DJANGO_SETTINGS_MODULE": "playground.settings",
            "PLAYGROUND_ENV_FILE": str(Path(scratch) / "no.env"),
            "SECRET_KEY": secrets.token_urlsafe(50),
            "PLAYGROUND_DATA_DIR": scratch,
            "PYTHONPATH": str(code),
            "PYTHONDONTWRITEBYTECODE": "1",
            **env,
        }
        done = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(spec)],
            cwd=code,
            env=child_env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="a checkout of older code to measure beside this one")
    args = parser.parse_args()
    codes = {"after": harness.ROOT}
    if args.before:
        codes = {"before": args.before.resolve(), **codes}
    data_dir = Path(tempfile.mkdtemp(prefix="playground-bench-"))
    try:
        print("Making the images and prompts…", flush=True)
        pngs = [large_image(data_dir / f"ref-{i}.png", "PNG", 10 + i * 15) for i in range(14)]
        jpegs = [large_image(data_dir / f"ref-{i}.jpg", "JPEG", 10 + i * 15) for i in range(14)]
        prompts = {}
        for name, text in {
            "short": "A red fox crossing fresh snow at dawn",
            "words-10k": " ".join(WORDS * (MAX_PROMPT // 40))[:MAX_PROMPT],
            "word-10k": "x" * MAX_PROMPT,
            "words-4m": " ".join(WORDS * (4_000_000 // 40))[:4_000_000],
            "word-4m": "x" * 4_000_000,
        }.items():
            prompts[name] = data_dir / f"{name}.txt"
            prompts[name].write_text(text)
        png_kb = sum(path.stat().st_size for path in pngs) / len(pngs) / 1024
        jpeg_kb = sum(path.stat().st_size for path in jpegs) / len(jpegs) / 1024

        memory_rows = [
            ("no reference image (yardstick)", [], {}),
            ("1 x 7000x7000 PNG", pngs[:1], {}),
            ("14 x 7000x7000 PNG, task cap raised", pngs, {"PLAYGROUND_MAX_TASK_PIXELS": RAISED}),
            ("14 x 7000x7000 JPEG, task cap raised", jpegs, {"PLAYGROUND_MAX_TASK_PIXELS": RAISED}),
            ("14 x 7000x7000 PNG, default caps", pngs, {}),
        ]
        time_rows = [
            ("short prompt (yardstick)", "short"),
            ("10,000 characters, words", "words-10k"),
            ("10,000 characters, one word", "word-10k"),
            ("4 MB, words (the issue's)", "words-4m"),
            ("4 MB, one word (the issue's)", "word-4m"),
        ]
        results: dict[tuple[str, str], dict] = {}
        for label, images, env in memory_rows:
            for version, code in codes.items():
                spec = {"prompt": str(prompts["short"]), "n": 1, "images": [str(path) for path in images]}
                results[(label, version)] = measure(code, data_dir, spec, env)
                print(label, version, results[(label, version)], flush=True)
        for label, prompt in time_rows:
            for version, code in codes.items():
                spec = {"prompt": str(prompts[prompt]), "n": 4, "images": []}
                results[(label, version)] = measure(code, data_dir, spec, {})
                print(label, version, results[(label, version)], flush=True)
    finally:
        import shutil

        shutil.rmtree(data_dir, ignore_errors=True)

    print()
    print(harness.machine())
    print(time.strftime("Date: %Y-%m-%d %H:%M UTC", time.gmtime()))
    print(
        f"Images: 7000x7000 (49 MP), PNG ~{png_kb:,.0f} KB and JPEG ~{jpeg_kb:,.0f} KB each; output 1K, n=1"
    )
    versions = list(codes)
    header = ["task"]
    for version in versions:
        header += [
            f"{version}: peak RSS growth (MB)",
            f"{version}: x yardstick",
            f"{version}: s",
            f"{version}: result",
        ]
    rows = []
    for label, _, _ in memory_rows:
        row = [label]
        for version in versions:
            result, base = results[(label, version)], results[(memory_rows[0][0], version)]
            ratio = result["growth"] / max(base["growth"], 1.0)
            row += [f"{result['growth']:.1f}", f"{ratio:.1f}", f"{result['seconds']:.2f}", result["outcome"]]
        rows.append(row)
    print(harness.table(rows, header))
    print("\nPrompts: n=4, 1K, no reference image")
    header = ["prompt"]
    for version in versions:
        header += [f"{version}: s", f"{version}: x yardstick", f"{version}: peak RSS growth (MB)"]
    rows = []
    for label, _ in time_rows:
        row = [label]
        for version in versions:
            result, base = results[(label, version)], results[(time_rows[0][0], version)]
            row += [
                f"{result['seconds']:.2f}",
                f"{result['seconds'] / base['seconds']:.1f}",
                f"{result['growth']:.1f}",
            ]
        rows.append(row)
    print(harness.table(rows, header))


if __name__ == "__main__":
    main()
