"""The offline engine: real images (Pillow) and short videos (WebM/VP8 via PyAV) with no network.

Every input plays its part, found through the model's roles so no model is special-cased:
count (`n`), aspect (`size`/`aspect_ratio`, `auto` = the first reference image's), resolution
(`1K` = long side 1024, `720p` = short side 720), the prompt (drawn on the image) and the seed (the
two decide the composition; without a seed each task is a new take), reference images (blended
in) and a mask (only the white part of
the mask changes; the rest is the first reference image). References are input files stored here
(read from storage), data URIs or hosted URLs, fetched under `fetch.py`'s address, size and time
rules.

It reports its progress (`RunContext.progress`) as each image starts and after each video frame.

Work is bounded by the output, not the input: reference images are read one at a time, held to
the pixel caps (each, and all of the task's together) from their headers, and decoded reduced to
about the output's size; the prompt is laid out only until the caption is full.
"""

import colorsys
import hashlib
import io
import math
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from .base import EngineError, EngineJob, EngineResult, EngineStopped, RunContext
from .fetch import FetchError, fetch_url
from .media import (
    MediaError,
    PixelBudget,
    decode_data_uri,
    decode_reduced,
    is_data_uri,
    iter_media_values,
    open_image_header,
)

FONT_CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)
MAX_REFERENCE_BYTES = 20 * 1024 * 1024
CAPTION_LINES = 4
VIDEO_FPS = 12
DEFAULT_VIDEO_SECONDS = 5
NEAREST = Image.Resampling.NEAREST
RESOLUTION = re.compile(r"^(?P<number>\d+)(?P<unit>[kp])$", re.I)


@dataclass(frozen=True)
class Shape:
    kind: str
    box: tuple[float, float, float, float]  # fractions of width/height
    colour: tuple[int, int, int, int]
    velocity: tuple[float, float]


def parse_ratio(
    aspect: str | None, reference: tuple[int, int] | None, default: tuple[int, int]
) -> tuple[int, int]:
    """`a:b` as integers; `auto` takes the shape of the first reference image (its size), else
    `default`."""
    if aspect and aspect != "auto":
        try:
            a, b = (int(part) for part in str(aspect).split(":"))
            if a > 0 and b > 0:
                return a, b
        except ValueError:
            pass
        raise EngineError(
            "invalid_aspect", f"The aspect ratio “{aspect}” is not of the form width:height, such as 16:9."
        )
    if reference is not None:
        width, height = reference
        divisor = math.gcd(width, height)
        return width // divisor, height // divisor
    return default


def output_size(ratio: tuple[int, int], resolution: str | None, *, video: bool) -> tuple[int, int]:
    """Pixel size with exactly `ratio` where the numbers allow it.

    `1K`/`2K`/`4K`: the long side is at most 1024/2048/4096; `720p` etc.: the short side is about
    720. Without a resolution: 1K for images, 720p for videos. Video sizes are rounded to even
    numbers, as VP8 needs.
    """
    a, b = ratio
    match = RESOLUTION.match(str(resolution or ("720p" if video else "1K")))
    if not match:
        raise EngineError(
            "invalid_resolution",
            f"The resolution “{resolution}” is not one of the known kinds, such as 1K or 720p.",
        )
    number, unit = int(match["number"]), match["unit"].lower()
    if unit == "k":
        long_side = 1024 * number
        scale = long_side // max(a, b)
        width, height = (a * scale, b * scale) if scale else _rounded(a, b, long_side, long=True)
    elif max(a, b) < 100:
        scale = round(number / min(a, b))
        if video:  # VP8 needs even sides: take the nearest scale that gives them
            scale = min(
                (s for s in (scale - 1, scale, scale + 1) if s > 0 and (a * s) % 2 == 0 and (b * s) % 2 == 0),
                key=lambda s: abs(min(a, b) * s - number),
                default=scale,
            )
        width, height = a * scale, b * scale
    else:
        width, height = _rounded(a, b, number, long=False)
    if video:
        width, height = width - width % 2, height - height % 2
    return max(width, 2), max(height, 2)


def _rounded(a: int, b: int, side: int, *, long: bool) -> tuple[int, int]:
    factor = side / (max(a, b) if long else min(a, b))
    return round(a * factor), round(b * factor)


@lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from django.conf import settings

    candidates = [getattr(settings, "PLAYGROUND_FONT_PATH", ""), *FONT_CANDIDATES]
    for path in candidates:
        if path and Path(path).is_file():
            try:
                return ImageFont.truetype(path, size)
            except OSError:
                continue
    return ImageFont.load_default(size)


def caption_lines(text: str, width: int, max_lines: int = CAPTION_LINES) -> list[str]:
    """The first `max_lines` lines of `text` wrapped at `width` characters, words longer than a
    line broken. Reads `text` only until the lines are full, in one pass: the work is the caption's,
    whatever the length of the prompt (textwrap wraps all of it, and a long word costs it time
    growing with the square of its length)."""
    lines: list[str] = []
    line, previous_end = "", -1
    for piece in re.finditer(rf"\S{{1,{width}}}", text):
        word, glued = piece.group(), piece.start() == previous_end  # glued: the rest of a long word
        previous_end = piece.end()
        joined = line + word if glued or not line else f"{line} {word}"
        if len(joined) <= width:
            line = joined
            continue
        lines.append(line)
        if len(lines) == max_lines:
            return lines
        line = word
    return [*lines, line] if line or not lines else lines


def pause() -> None:
    """Wait PLAYGROUND_LOCAL_ENGINE_DELAY seconds: demos and tests need a task that is still running
    a moment later (to cancel it, stop its worker, or kill it)."""
    from django.conf import settings

    delay = getattr(settings, "PLAYGROUND_LOCAL_ENGINE_DELAY", 0)
    if delay > 0:
        time.sleep(delay)


def composition(prompt: str, seed: int | str, index: int) -> tuple[list[tuple[int, int, int]], list[Shape]]:
    """A palette and shapes derived only from the prompt, seed and image index (deterministic)."""
    digest = hashlib.sha256(f"{prompt}\x00{seed}\x00{index}".encode()).digest()
    rng = random.Random(digest)
    base_hue = rng.random()
    palette = []
    for step in range(5):
        hue = (base_hue + step * 0.13 + rng.uniform(-0.04, 0.04)) % 1
        palette.append(_hsv(hue, rng.uniform(0.45, 0.85), rng.uniform(0.45, 0.95)))
    shapes = []
    for _ in range(rng.randint(9, 16)):
        x, y = rng.uniform(-0.1, 0.9), rng.uniform(-0.1, 0.8)
        size = rng.uniform(0.08, 0.45)
        colour = (*rng.choice(palette), rng.randint(90, 200))
        shapes.append(
            Shape(
                kind=rng.choice(("ellipse", "rectangle", "triangle")),
                box=(x, y, x + size, y + size * rng.uniform(0.6, 1.4)),
                colour=colour,
                velocity=(rng.uniform(-0.15, 0.15), rng.uniform(-0.1, 0.1)),
            )
        )
    return palette, shapes


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return round(r * 255), round(g * 255), round(b * 255)


class Scene:
    """One composition at one size. Video frames share its background and caption and only move
    the shapes, so a frame costs a few draw calls."""

    def __init__(self, size: tuple[int, int], prompt: str, seed: int | str, index: int):
        self.size = size
        palette, self.shapes = composition(prompt, seed, index)
        gradient = Image.linear_gradient("L").resize(size)
        self.background = ImageOps.colorize(gradient, palette[0], palette[-1]).convert("RGBA")
        self.font_size = max(12, min(size) // 22)
        self.caption = self._caption(prompt)

    def frame(self, t: float = 0.0, label: str = "") -> Image.Image:
        width, height = self.size
        overlay = Image.new("RGBA", self.size)
        draw = ImageDraw.Draw(overlay)
        for shape in self.shapes:
            dx, dy = shape.velocity[0] * t, shape.velocity[1] * t
            x0, y0, x1, y1 = shape.box
            box = ((x0 + dx) * width, (y0 + dy) * height, (x1 + dx) * width, (y1 + dy) * height)
            if shape.kind == "ellipse":
                draw.ellipse(box, fill=shape.colour)
            elif shape.kind == "rectangle":
                draw.rectangle(box, fill=shape.colour)
            else:
                apex = ((box[0] + box[2]) / 2, box[1])
                draw.polygon([(box[0], box[3]), apex, (box[2], box[3])], fill=shape.colour)
        image = Image.alpha_composite(Image.alpha_composite(self.background, overlay), self.caption)
        if label:
            small = _font(max(10, self.font_size // 2))
            margin = self.font_size // 2
            ImageDraw.Draw(image).text((margin, margin), label, font=small, fill=(255, 255, 255, 220))
        return image.convert("RGB")

    def _caption(self, prompt: str) -> Image.Image:
        """The prompt, wrapped, on a translucent band along the bottom."""
        width, height = self.size
        font_size = self.font_size
        chars_per_line = max(10, int(width / (font_size * 0.55)))
        lines = caption_lines(prompt, chars_per_line)
        line_height = int(font_size * 1.3)
        band = line_height * len(lines) + font_size
        layer = Image.new("RGBA", self.size)
        draw = ImageDraw.Draw(layer)
        draw.rectangle((0, height - band, width, height), fill=(0, 0, 0, 150))
        font = _font(font_size)
        for row, line in enumerate(lines):
            position = (font_size // 2, height - band + font_size // 2 + row * line_height)
            draw.text(position, line, font=font, fill="white")
        return layer


def fetched(url: str, where: str) -> bytes:
    try:
        return fetch_url(url).content
    except FetchError as exc:
        raise EngineError("input_unavailable", f"{where}: {exc.message}") from exc


@dataclass
class OpenedImage:
    where: str  # the input value, in words
    image: Image.Image | None  # its header, until decoded


class ReferenceImages:
    """A task's input images, read one at a time: each is refused from its header when it has
    more pixels than allowed alone or, counted with the ones before it, for the task; then decoded
    at about the size of the output (`media.decode_reduced`). Anything that is not a usable image
    is `invalid_input_image`."""

    def __init__(self):
        from django.conf import settings

        self.max_pixels = settings.PLAYGROUND_MAX_INPUT_IMAGE_PIXELS
        self.budget = PixelBudget(settings.PLAYGROUND_MAX_TASK_PIXELS)

    def open(self, where: str, read: Callable[[], bytes]) -> OpenedImage:
        """The image's header (no pixel decoded), counted against the caps."""
        try:
            image = open_image_header(io.BytesIO(read()), self.max_pixels)
            self.budget.add(image.size)
        except MediaError as exc:
            raise EngineError("invalid_input_image", f"{where}: {exc.message}") from exc
        return OpenedImage(where, image)

    def decode(self, opened: OpenedImage, size: tuple[int, int]) -> Image.Image:
        """The image reduced to about `size`; `opened` is spent (its full-size pixels let go)."""
        image, opened.image = opened.image, None
        try:
            return decode_reduced(image, size)
        except MediaError as exc:
            raise EngineError("invalid_input_image", f"{opened.where}: {exc.message}") from exc


def cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale and centre-crop `image` to fill `size`."""
    return ImageOps.fit(image.convert("RGB"), size, Image.Resampling.LANCZOS)


class Blend:
    """Reference images (each already at the output's size) blended into an output: half the first,
    then a fifth of each next one over what came before. The references are folded, as they come,
    into one layer and its weight, so one output-sized layer stands for any number of them."""

    def __init__(self):
        self.base: Image.Image | None = None  # the first reference: what a mask keeps
        self.layer: Image.Image | None = None
        self.weight = 0.0  # of the layer in the output

    def add(self, reference: Image.Image) -> None:
        if self.layer is None:
            self.base, self.layer, self.weight = reference, reference, 0.5
            return
        # output' = 0.8 output + 0.2 reference: the layer's weight grows, the image's shrinks.
        self.weight = 0.8 * self.weight + 0.2
        self.layer = Image.blend(self.layer, reference, 0.2 / self.weight)

    def over(self, image: Image.Image, mask: Image.Image | None) -> Image.Image:
        """`image` with the references blended in; where `mask` is black, the first reference
        untouched (white = change there)."""
        if self.layer is None:
            return image
        blended = Image.blend(image, self.layer, self.weight)
        return blended if mask is None else Image.composite(blended, self.base, mask)


class LocalEngine:
    name = "local"
    title = "the local engine"

    def settle(self, job: EngineJob) -> Decimal:
        return Decimal(0)  # offline: a run that did not finish bills nothing

    def run(self, job: EngineJob, context: RunContext) -> EngineResult:
        prompt = str(job.role("prompt", "") or "")
        seed = job.role("seed")
        # Like a real model: a given seed repeats its picture; without one (or -1) every run of
        # the same prompt is a new take, varied by the task.
        seed = seed if isinstance(seed, int) and seed >= 0 else job.task_id
        count = int(job.role("count", 1) or 1)
        video = job.kind == "video"
        images = ReferenceImages()
        reference_sources = list(self._sources(job, "reference_images"))
        # The first reference's shape is the output's for "auto": read from its header.
        first = images.open(*reference_sources[0]) if reference_sources else None
        ratio = parse_ratio(
            job.role("aspect"), first.image.size if first else None, (16, 9) if video else (1, 1)
        )
        size = output_size(ratio, job.role("resolution"), video=video)
        # Each reference is folded into the blend as soon as it is read: one at a time in memory.
        blend = Blend()
        if first is not None:
            blend.add(cover(images.decode(first, size), size))
        for source in reference_sources[1:]:
            blend.add(cover(images.decode(images.open(*source), size), size))
        mask = None
        for source in self._sources(job, "mask"):
            mask = ImageOps.fit(images.decode(images.open(*source), size).convert("L"), size, NEAREST)
        if video:
            return self._videos(job, context, size, prompt, seed, count, blend.base)
        for index in range(count):
            if context.should_stop():
                raise EngineStopped
            context.progress(index / count, step_done=True)
            context.report(f"Rendering image {index + 1} of {count} at {size[0]}x{size[1]}.")
            pause()
            image = Scene(size, prompt, seed, index).frame(label=f"local · {index + 1}/{count}")
            image = blend.over(image, mask)
            buffer = io.BytesIO()
            image.save(buffer, "PNG", compress_level=3)
            context.save_output(f"{index}.png", buffer.getvalue(), "image/png", width=size[0], height=size[1])
        return EngineResult()

    def _sources(self, job: EngineJob, role: str) -> Iterator[tuple[str, Callable[[], bytes]]]:
        """Where each image playing `role` is (in words) and how to read its bytes: our own input
        file from storage, a data URI, or a hosted URL (fetched under the fetcher's address, size
        and time rules; one that cannot be fetched is `input_unavailable`)."""
        field = job.roles.get(role)
        if not field:
            return
        for item in iter_media_values(job.input_schema, job.roles, job.input):
            if item.path[0] != field or item.kind != "image":
                continue
            where, value = job.describe(item.path), item.value
            stored = job.stored_inputs.get(value)
            if stored is not None:
                yield where, stored.read
            elif is_data_uri(value):
                yield where, lambda value=value: decode_data_uri(value, MAX_REFERENCE_BYTES)[1]
            else:
                yield where, lambda value=value, where=where: fetched(value, where)

    def _videos(self, job, context, size, prompt, seed, count, first: Image.Image | None) -> EngineResult:
        import av

        seconds = int(job.role("duration", 0) or 0) or DEFAULT_VIDEO_SECONDS
        frames = seconds * VIDEO_FPS
        for index in range(count):
            scene = Scene(size, prompt, seed, index)
            context.progress(index / count, step_done=True)
            context.report(f"Rendering video {index + 1} of {count}: {seconds} s at {size[0]}x{size[1]}.")
            buffer = io.BytesIO()
            container = av.open(buffer, "w", format="webm")
            stream = container.add_stream("libvpx", rate=VIDEO_FPS)
            stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
            stream.options = {"deadline": "realtime", "cpu-used": "8", "b": "2M"}
            for number in range(frames):
                if number % VIDEO_FPS == 0:
                    if context.should_stop():
                        container.close()
                        raise EngineStopped
                    pause()
                frame = scene.frame(t=number / frames, label=f"local · {number / VIDEO_FPS:.1f}s")
                if first is not None:
                    # The start image fades into the generated scene over the first second.
                    frame = Image.blend(first, frame, min(1.0, number / VIDEO_FPS))
                for packet in stream.encode(av.VideoFrame.from_image(frame)):
                    container.mux(packet)
                context.progress((index + (number + 1) / frames) / count)
            for packet in stream.encode():
                container.mux(packet)
            container.close()
            context.save_output(
                f"{index}.webm",
                buffer.getvalue(),
                "video/webm",
                width=size[0],
                height=size[1],
                duration=seconds,
                frames=frames,
            )
        return EngineResult(billed_seconds=seconds)
