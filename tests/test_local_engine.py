"""The offline `local` engine, called directly: real PNGs and WebMs from a catalog entry's input.

The run context is a test double of the runner's interface (it collects outputs, reports and a
stop flag); the engine, the catalog entries and the media decoding are the real code.
"""

import base64
import io
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import pytest
from PIL import Image, ImageChops

from playground.engines.base import EngineError, EngineJob, EngineStopped
from playground.engines.local import LocalEngine

from .fixtures_http import Reply

SEED = "gemini-3-pro-image-preview-official"
WEBM_MAGIC = bytes.fromhex("1a45dfa3")


@dataclass
class Saved:
    name: str
    content: bytes
    content_type: str
    meta: dict[str, Any]


@dataclass
class FakeContext:
    """Collects what the engine saves and reports; stops once `stop_after` outputs exist."""

    stop_after: int | None = None
    outputs: list[Saved] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    stop_checks: int = 0
    progress_reports: list[tuple[float, bool]] = field(default_factory=list)  # (fraction, step_done)

    def report(self, message: str) -> None:
        self.reports.append(message)

    def progress(self, fraction: float, *, step_done: bool = False) -> None:
        self.progress_reports.append((fraction, step_done))

    def should_stop(self) -> bool:
        self.stop_checks += 1
        return self.stop_after is not None and len(self.outputs) >= self.stop_after

    def save_output(self, name: str, content: bytes, content_type: str, **meta: Any) -> None:
        self.outputs.append(Saved(name, content, content_type, meta))


def make_job(entry, data: dict, task_id: str = "t1") -> EngineJob:
    return EngineJob(
        task_id=task_id,
        owner_id=1,
        model_slug=entry.slug,
        kind=entry.kind,
        output_key=entry.output_key,
        roles=dict(entry.roles),
        input_schema=entry.input_schema,
        input=data,
    )


def run(entry, data: dict, context: FakeContext | None = None, task_id: str = "t1"):
    context = context or FakeContext()
    result = LocalEngine().run(make_job(entry, data, task_id), context)
    return result, context


def png_data_uri(size=(300, 200), colour=(10, 120, 200), mode="RGB") -> str:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def image_data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def decode(saved: Saved) -> Image.Image:
    image = Image.open(io.BytesIO(saved.content))
    assert image.format == "PNG"
    image.load()
    return image


def ratio_of(size: tuple[int, int]) -> Fraction:
    return Fraction(size[0], size[1])


def seed_input(**overrides):
    return {"prompt": "A lantern in a bamboo grove", "size": "1:1", "resolution": "1K", "n": 1, **overrides}


# --- sizes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aspect", "resolution", "expected"),
    [
        ("1:1", "1K", (1024, 1024)),
        ("16:9", "1K", (1024, 576)),
        ("21:9", "1K", (1008, 432)),
        ("9:16", "2K", (1152, 2048)),
    ],
)
def test_it_renders_pngs_of_the_exact_size_and_ratio(catalog, aspect, resolution, expected):
    _, context = run(catalog[SEED], seed_input(size=aspect, resolution=resolution))

    [saved] = context.outputs
    assert saved.content_type == "image/png"
    image = decode(saved)
    assert image.size == expected
    assert (saved.meta["width"], saved.meta["height"]) == expected
    a, b = (int(part) for part in aspect.split(":"))
    assert ratio_of(image.size) == Fraction(a, b)


def test_it_keeps_an_exact_4_5_ratio_within_the_1k_long_side(catalog):
    _, context = run(catalog[SEED], seed_input(size="4:5", resolution="1K"))

    width, height = decode(context.outputs[0]).size
    assert Fraction(width, height) == Fraction(4, 5)
    assert 1000 <= max(width, height) <= 1024


def test_it_renders_one_png_per_requested_image(catalog):
    _, context = run(catalog[SEED], seed_input(n=3))

    assert [saved.name for saved in context.outputs] == ["0.png", "1.png", "2.png"]
    images = [decode(saved) for saved in context.outputs]
    assert all(image.size == (1024, 1024) for image in images)
    assert len({image.tobytes() for image in images}) == 3  # each image is its own composition
    assert len(context.reports) == 3


def test_it_takes_the_aspect_of_the_first_reference_image_for_auto(catalog):
    data = seed_input(size="auto", image_urls=[png_data_uri((300, 200)), png_data_uri((100, 400))])
    _, context = run(catalog[SEED], data)

    image = decode(context.outputs[0])
    assert ratio_of(image.size) == Fraction(3, 2)
    assert max(image.size) <= 1024


def test_it_renders_a_square_for_auto_without_references(catalog):
    _, context = run(catalog[SEED], seed_input(size="auto"))

    assert decode(context.outputs[0]).size == (1024, 1024)


@pytest.mark.parametrize(
    ("slug", "aspect", "resolution", "expected"),
    [
        ("gpt-image-2", "16:9", "2k", (2048, 1152)),
        ("gpt-image-2", "1:1", "1k", (1024, 1024)),
        ("doubao-seedream-5-0-lite", "3:2", "2k", (2046, 1364)),
    ],
)
def test_it_understands_lowercase_resolutions(catalog, slug, aspect, resolution, expected):
    data = {"prompt": "A paper boat", "size": aspect, "resolution": resolution, "n": 1}
    _, context = run(catalog[slug], data)

    image = decode(context.outputs[0])
    assert image.size == expected
    a, b = (int(part) for part in aspect.split(":"))
    assert ratio_of(image.size) == Fraction(a, b)


# --- content -------------------------------------------------------------------------------------


def test_each_task_of_the_same_prompt_is_a_new_take(catalog):
    _, first = run(catalog[SEED], seed_input(), task_id="task_one")
    _, second = run(catalog[SEED], seed_input(), task_id="task_two")

    assert decode(first.outputs[0]).tobytes() != decode(second.outputs[0]).tobytes()


def test_a_given_seed_repeats_its_take_across_tasks_and_minus_one_does_not(catalog):
    vidu = catalog["viduq3-pro"]  # the catalog's seeds are on video models
    short = {"prompt": "a fox", "resolution": "540p", "duration": 1, "aspect_ratio": "1:1"}

    def take(seed, task_id):  # the first frame's pixels (the container has a random id of its own)
        webm = run(vidu, {**short, "seed": seed}, task_id=task_id)[1].outputs[0].content
        with av.open(io.BytesIO(webm)) as container:
            return next(container.decode(video=0)).to_image().tobytes()

    assert take(5, "task_one") == take(5, "task_two")
    assert take(-1, "task_one") != take(-1, "task_two")


def test_it_renders_different_pixels_for_a_different_prompt(catalog):
    _, first = run(catalog[SEED], seed_input(prompt="A lantern in a bamboo grove"))
    _, second = run(catalog[SEED], seed_input(prompt="A lighthouse in a storm"))

    assert decode(first.outputs[0]).tobytes() != decode(second.outputs[0]).tobytes()


def test_it_blends_reference_images_into_the_output(catalog):
    _, plain = run(catalog[SEED], seed_input())
    _, referenced = run(catalog[SEED], seed_input(image_urls=[png_data_uri((512, 512), (250, 250, 20))]))

    plain_image, referenced_image = decode(plain.outputs[0]), decode(referenced.outputs[0])
    assert plain_image.size == referenced_image.size
    assert ImageChops.difference(plain_image, referenced_image).getbbox() is not None


def test_it_changes_only_the_white_part_of_the_mask(catalog):
    colour = (0, 0, 255)
    mask = Image.new("L", (256, 256), 0)
    mask.paste(255, (128, 0, 256, 256))  # left half black (keep), right half white (change)
    data = seed_input(image_urls=[png_data_uri((256, 256), colour)], mask_url=image_data_uri(mask))
    _, context = run(catalog[SEED], data)

    image = decode(context.outputs[0]).convert("RGB")
    width, height = image.size
    reference = Image.new("RGB", (width // 2, height), colour)
    kept = image.crop((0, 0, width // 2, height))
    changed = image.crop((width // 2, 0, width, height))
    assert ImageChops.difference(kept, reference).getbbox() is None  # identical to the reference
    unchanged_pixels = ImageChops.difference(changed, reference).convert("L").histogram()[0]
    assert unchanged_pixels == 0  # every pixel of the white half differs from the reference


# --- stopping and refusals -----------------------------------------------------------------------


def test_it_stops_before_the_second_image_when_asked(catalog):
    context = FakeContext(stop_after=1)

    with pytest.raises(EngineStopped):
        run(catalog[SEED], seed_input(n=3), context)

    assert len(context.outputs) == 1
    assert context.stop_checks == 2


def test_it_fetches_a_hosted_reference_image(catalog, http_server):
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), (250, 250, 20)).save(buffer, "PNG")
    url = http_server.route("/ref.png", Reply(200, buffer.getvalue(), {"Content-Type": "image/png"}))

    _, context = run(catalog[SEED], seed_input(size="auto", image_urls=[url]))

    assert ratio_of(decode(context.outputs[0]).size) == Fraction(3, 2)  # the fetched image's shape
    assert [request.path for request in http_server.requests] == ["/ref.png"]


def test_it_fails_on_a_hosted_reference_it_may_not_fetch(catalog, outbound_connections):
    data = seed_input(image_urls=["http://169.254.169.254/latest/meta-data/cat.png"])

    with pytest.raises(EngineError) as caught:
        run(catalog[SEED], data)

    assert caught.value.code == "input_unavailable"
    assert caught.value.message == (
        "Reference images, item 1: 169.254.169.254 is a cloud metadata address; it is not fetched from."
    )
    assert outbound_connections == []


def test_it_fails_on_a_hosted_reference_that_is_not_an_image(catalog, http_server):
    html = Reply(200, b"<!doctype html><p>Please sign in</p>", {"Content-Type": "text/html"})
    data = seed_input(image_urls=[http_server.route("/cat.png", html)])

    with pytest.raises(EngineError) as caught:
        run(catalog[SEED], data)

    assert caught.value.code == "invalid_input_image"
    assert caught.value.message.startswith("Reference images, item 1: The file is not an image")


@pytest.mark.parametrize(
    "value",
    [
        "data:text/plain;base64," + base64.b64encode(b"hello, not an image").decode(),
        "data:image/png;base64," + base64.b64encode(b"<!doctype html><html></html>").decode(),
        "data:image/png;base64,@@@not-base64@@@",
    ],
    ids=["text", "html-named-png", "corrupt-base64"],
)
def test_it_refuses_a_data_uri_that_is_not_an_image(catalog, value):
    context = FakeContext()

    with pytest.raises(EngineError) as caught:
        run(catalog[SEED], seed_input(image_urls=[value]), context)

    assert caught.value.code == "invalid_input_image"
    assert caught.value.message.startswith("Reference images, item 1: ")
    assert context.outputs == []


def test_it_refuses_a_mask_that_is_not_an_image(catalog):
    data = seed_input(image_urls=[png_data_uri()], mask_url="data:text/plain;base64,aGVsbG8=")

    with pytest.raises(EngineError) as caught:
        run(catalog[SEED], data)

    assert caught.value.code == "invalid_input_image"
    assert caught.value.message.startswith("Mask image: ")


# --- videos --------------------------------------------------------------------------------------


def video_facts(content: bytes) -> tuple[int, tuple[int, int]]:
    with av.open(io.BytesIO(content)) as container:
        stream = container.streams.video[0]
        size = (stream.codec_context.width, stream.codec_context.height)
        frames = sum(1 for _ in container.decode(video=0))
    return frames, size


@pytest.mark.parametrize(
    ("slug", "data", "expected_size"),
    [
        ("kling-v3", {"prompt": "A fox in snow", "aspect_ratio": "16:9", "duration": 5}, (1280, 720)),
        (
            "viduq3-pro",
            {"prompt": "A fox in snow", "aspect_ratio": "9:16", "resolution": "720p", "duration": 1},
            (720, 1280),
        ),
        (
            "viduq3-pro",
            {"prompt": "A fox in snow", "aspect_ratio": "1:1", "resolution": "540p", "duration": 1},
            (540, 540),
        ),
    ],
    ids=["kling-16:9-5s", "vidu-9:16-720p-1s", "vidu-1:1-540p-1s"],
)
def test_it_renders_a_webm_of_the_requested_length_and_shape(catalog, slug, data, expected_size):
    result, context = run(catalog[slug], data)

    [saved] = context.outputs
    assert saved.name == "0.webm"
    assert saved.content_type == "video/webm"
    assert saved.content[:4] == WEBM_MAGIC
    frames, size = video_facts(saved.content)
    assert frames == data["duration"] * 12
    assert size == expected_size
    assert size[0] % 2 == 0 and size[1] % 2 == 0
    a, b = (int(part) for part in data["aspect_ratio"].split(":"))
    assert ratio_of(size) == Fraction(a, b)
    assert min(size) == int(data.get("resolution", "720p")[:-1])  # short side = the p number
    assert result.billed_seconds == data["duration"]
    assert saved.meta == {
        "width": size[0],
        "height": size[1],
        "duration": data["duration"],
        "frames": data["duration"] * 12,
    }


def test_it_stops_a_video_between_seconds_when_asked(catalog):
    class StopAfterFirstCheck(FakeContext):
        def should_stop(self) -> bool:
            self.stop_checks += 1
            return self.stop_checks > 1

    context = StopAfterFirstCheck()
    data = {"prompt": "A fox in snow", "aspect_ratio": "1:1", "resolution": "540p", "duration": 3}

    with pytest.raises(EngineStopped):
        run(catalog["viduq3-pro"], data, context)

    assert context.outputs == []
    assert context.stop_checks == 2  # checked at frame 0 and at frame 12 (one second in)


def test_it_reports_its_progress_at_each_image(catalog):
    _, context = run(catalog[SEED], seed_input(n=4))

    # Where each step starts: the images done so far (the task's success says "all of them").
    assert context.progress_reports == [(0.0, True), (0.25, True), (0.5, True), (0.75, True)]


def test_it_reports_its_progress_at_each_video_frame(catalog):
    data = {"prompt": "A fox in snow", "aspect_ratio": "1:1", "resolution": "540p", "duration": 1}
    _, context = run(catalog["viduq3-pro"], data)

    fractions = [fraction for fraction, _ in context.progress_reports]
    assert context.progress_reports[0] == (0.0, True)
    assert len(fractions) == 1 + 12  # the start, then each of its 12 frames
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
