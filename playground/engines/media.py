"""Media inputs (reference images, masks, videos, audio): finding them in an input, decoding data
URIs safely and checking that content is the kind of media it claims to be.

Safety rules: the size of a data URI is checked before it is decoded; images are opened by Pillow
with an explicit list of formats and a pixel cap checked before any pixel is decoded, so a
decompression bomb or an HTML page named .png is refused rather than loaded; the images of one task
are counted together against a cap per task (`PixelBudget`); a video or audio file must start like
a known container. Hosted URLs are checked (never fetched) here by `fetch.check_url`. An engine that
only needs an image at the size of its output decodes it reduced (`decode_reduced`).

Media that comes with a request (a data URI, an uploaded file) is a `MediaPayload` until it is
stored as an input file: it is read without a second copy in memory (decoded in steps into a
spooled temporary file, hashed on the way) and checked on those bytes by `check_payload`.
"""

import base64
import binascii
import hashlib
import io
import json
import math
import re
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from PIL import Image

from .fetch import FetchError, Resolver, check_url

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
DATA_URI = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,", re.I
)
# What each media role holds: the one table of it (a catalog entry maps roles to its fields).
ROLE_KINDS = {
    "reference_images": "image",
    "mask": "image",
    "reference_video": "video",
    "reference_audio": "audio",
}
MEDIA_KINDS = ("image", "video", "audio")


class MediaError(Exception):
    def __init__(self, message: str, code: str = "invalid_media"):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class MediaValue:
    path: tuple[str | int, ...]  # where in the input, e.g. ("image_urls", 0)
    kind: str  # image | video | audio
    value: "str | MediaPayload"


def media_kind(spec: dict, role: str | None = None) -> str:
    """The kind of media ("image", "video", "audio") a field of schema `spec` holds, "" when it
    holds none: its `uploadKind` hint, else the type its `accept` hint names, else what its `role`
    holds (an upload widget without either holds images). The one rule for what is media: the
    form (through `catalog.fields`), the API's checks and the engines all ask it."""
    hints = spec.get("x-playground") or {}
    if not isinstance(hints, dict):
        hints = {}
    kind = hints.get("uploadKind")
    if kind in MEDIA_KINDS:
        return kind
    accept = str(hints.get("accept", ""))
    for candidate in MEDIA_KINDS:
        if accept.startswith(candidate):
            return candidate
    role_kind = ROLE_KINDS.get(role or "")
    if hints.get("widget") == "file-upload" or role_kind:
        return role_kind or "image"
    return ""


def iter_media_values(schema: dict, roles: dict, data: dict) -> Iterator[MediaValue]:
    """Every media string in `data` (see `media_kind`), arrays and arrays of objects
    (`image_with_roles[0].url`) included."""
    role_of_field = {field: role for role, field in roles.items()}
    for name, spec in (schema.get("properties") or {}).items():
        if name not in data or not isinstance(spec, dict):
            continue
        value = data[name]
        items = spec.get("items") if isinstance(spec.get("items"), dict) else {}
        if isinstance(value, list) and items.get("type") == "object":
            for index, element in enumerate(value):
                if not isinstance(element, dict):
                    continue
                for sub, sub_spec in (items.get("properties") or {}).items():
                    kind = media_kind(sub_spec) if isinstance(sub_spec, dict) else ""
                    if kind and isinstance(element.get(sub), str | MediaPayload):
                        yield MediaValue((name, index, sub), kind, element[sub])
            continue
        kind = media_kind(spec, role_of_field.get(name))
        if not kind:
            continue
        if isinstance(value, str | MediaPayload):
            yield MediaValue((name,), kind, value)
        elif isinstance(value, list):
            for index, element in enumerate(value):
                if isinstance(element, str | MediaPayload):
                    yield MediaValue((name, index), kind, element)


def is_data_uri(value: str) -> bool:
    return value[:5].lower() == "data:"


def decode_data_uri(value: str, max_bytes: int) -> tuple[str, bytes]:
    """(mime type, bytes) of a base64 data URI, refusing one over `max_bytes` before decoding."""
    match = DATA_URI.match(value[:512])
    if not match or not match.group("b64"):
        raise MediaError("This data URI cannot be read: it should look like data:image/png;base64,….")
    payload = value[match.end() :]
    if len(payload) * 3 // 4 - payload[-2:].count("=") > max_bytes:
        raise MediaError(f"The file is larger than {max_bytes // (1024 * 1024)} MB.", "too_large")
    try:
        content = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MediaError("This data URI is damaged: its data is not valid base64.") from exc
    return (match.group("mime") or "").lower(), content


def open_image_header(source: IO[bytes], max_pixels: int) -> Image.Image:
    """`source` opened as an image of a known format within the pixel cap, read from its header:
    no pixel is decoded yet."""
    try:
        with warnings.catch_warnings():
            # Pillow warns past its own soft cap; ours (`max_pixels`, checked below) decides.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(source, formats=IMAGE_FORMATS)
    except Image.DecompressionBombError as exc:  # over Pillow's hard cap (~179 MP), before ours
        raise MediaError(
            f"The image has far more pixels than the {max_pixels:,} allowed.", "too_many_pixels"
        ) from exc
    except (Image.UnidentifiedImageError, OSError) as exc:
        raise MediaError("The file is not an image (PNG, JPEG, WebP, GIF or BMP).", "not_an_image") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise MediaError(
            f"The image is {width}x{height} pixels, more than the {max_pixels:,} allowed.", "too_many_pixels"
        )
    return image


DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    Image.DecompressionBombWarning,
    Image.DecompressionBombError,
)


def open_image(content: bytes | IO[bytes], max_pixels: int) -> Image.Image:
    """Decode `content` (bytes or a binary file) as an image of a known format, refusing
    decompression bombs."""
    source = io.BytesIO(content) if isinstance(content, bytes | bytearray) else content
    image = open_image_header(source, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except DECODE_ERRORS as exc:
        raise MediaError("The image could not be decoded.", "not_an_image") from exc
    return image


# Images of formats without a reduced decoding are decoded at submit up to this size (16 MB as RGBA).
FULL_CHECK_PIXELS = 4_000_000


def check_image(source: IO[bytes], max_pixels: int) -> tuple[str, tuple[int, int]]:
    """Refuse what is not a whole image of a known format within the pixel cap, without holding
    its pixels (a submit checks images this way; the engine decodes them when it runs): a JPEG is
    decoded at an eighth of its size, a PNG's chunks are read to the end with their checksums, other
    formats (WebP, GIF, BMP: no reduced decoding) are decoded only up to FULL_CHECK_PIXELS, since a
    few KB of WebP can hold 200 MB of pixels; larger ones are checked by their header here and in
    full when the task runs. Returns the format and the size."""
    image = open_image_header(source, max_pixels)
    image_format, size = image.format or "", image.size
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if image_format == "JPEG":
                image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
                image.load()
            elif image_format == "PNG":
                image.verify()
            elif image.width * image.height <= FULL_CHECK_PIXELS:
                image.load()
    except DECODE_ERRORS as exc:
        raise MediaError("The image could not be decoded.", "not_an_image") from exc
    return image_format, size


REDUCIBLE_MODES = ("RGB", "RGBA", "L", "LA")


def decode_reduced(image: Image.Image, cover: tuple[int, int]) -> Image.Image:
    """Decode an image from `open_image_header` at about the smallest size that still covers
    `cover` once scaled to fill it, in RGB: a JPEG is decoded by libjpeg at 1/2, 1/4 or 1/8 of its
    size (`draft`), other formats are decoded and shrunk at once by a whole factor (`reduce`). So
    an engine holds each reference image at about the size of its output, and at most one at full
    size for a moment, however many it blends. The caller drops `image` afterwards: it may now hold
    the decoded pixels."""
    width, height = image.size
    scale = max(cover[0] / width, cover[1] / height)
    needed = (max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our cap was checked
            if scale < 1 and image.format == "JPEG":
                image.draft(image.mode, needed)
            image.load()
            if image.mode not in REDUCIBLE_MODES:
                image = image.convert("RGB")
            factor = min(image.width // needed[0], image.height // needed[1])
            if factor > 1:
                image = image.reduce(factor)
            return image.convert("RGB")
    except DECODE_ERRORS as exc:
        raise MediaError("The image could not be decoded.", "not_an_image") from exc


@dataclass
class PixelBudget:
    """The pixels of one task's input images, added up one image at a time against the cap per
    task: the image that goes over it is the one refused (`too_many_task_pixels`)."""

    max_pixels: int
    used: int = 0

    def add(self, size: tuple[int, int]) -> None:
        width, height = size
        self.used += width * height
        if self.used > self.max_pixels:
            raise MediaError(
                f"With this image ({width}x{height} pixels) the task's images come to {self.used:,} "
                f"pixels, more than the {self.max_pixels:,} allowed for one task: "
                "send fewer or smaller images.",
                "too_many_task_pixels",
            )


def container_of(head: bytes) -> str | None:
    """The container format a video or audio file starts like, from its first bytes."""
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"  # also WebM
    if head[4:8] == b"ftyp":
        return "mp4"  # also MOV, M4A, 3GP
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"AVI "):
        return "wav" if head[8:12] == b"WAVE" else "avi"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mpeg-audio"  # MP3 (with or without an ID3 tag), AAC in ADTS
    return None


CONTAINERS = {
    "video": frozenset({"matroska", "mp4", "ogg", "avi"}),
    "audio": frozenset({"matroska", "mp4", "ogg", "wav", "flac", "mpeg-audio"}),
}


def check_media_content(kind: str, content: bytes, max_pixels: int) -> Image.Image | None:
    """Refuse `content` that is not the `kind` of media claimed; an image is decoded and returned.

    Videos and audio are not decoded, only recognised by their container's signature: enough to
    turn away an HTML error page or a text file.
    """
    if kind == "image":
        return open_image(content, max_pixels)
    if container_of(content[:16]) not in CONTAINERS.get(kind, ()):
        names = "WebM, MKV, MP4, MOV, Ogg or AVI" if kind == "video" else "MP3, AAC, M4A, Ogg, WAV or FLAC"
        raise MediaError(f"The file is not a {kind} file ({names}).", f"not_{kind}")
    return None


def check_media_value(
    item: MediaValue, *, max_bytes: int, max_pixels: int, resolver: Resolver | None = None
) -> tuple[int, int] | None:
    """Refuse a media value at submit time: data URIs must hold the right kind of media; hosted
    URLs must pass the fetcher's scheme, port and address rules (their host is resolved with
    `resolver`, but nothing is downloaded: that happens when the task runs). Returns the size of
    an image in a data URI (None for anything else)."""
    value = item.value
    if is_data_uri(value):
        mime, content = decode_data_uri(value, max_bytes)
        if item.kind != "image" and mime and not mime.startswith(item.kind + "/"):
            raise MediaError(f"This should be a {item.kind} file, but it is {mime}.", "wrong_media_type")
        if item.kind == "image":
            return check_image(io.BytesIO(content), max_pixels)[1]
        check_media_content(item.kind, content, max_pixels)
        return None
    scheme = value.strip().split(":", 1)[0].lower() if ":" in value else ""  # " http://…": check_url says why
    if scheme not in ("http", "https"):
        raise MediaError("Must be a web address (http:// or https://) or a data URI.", "unsupported_url")
    try:
        check_url(value, resolver=resolver, unresolvable_ok=True)
    except FetchError as exc:
        raise MediaError(exc.message, exc.code) from exc
    return None


# --- Media that came with a request, before it is stored ---------------------------------------------

SPOOL_BYTES = 1024 * 1024  # a decoded file larger than this waits on disk, not in memory
DECODE_STEP = 1024 * 1024  # base64 characters decoded at a time (a multiple of 4)
IMAGE_TYPES = {
    "PNG": ("image/png", "png"),
    "JPEG": ("image/jpeg", "jpg"),
    "WEBP": ("image/webp", "webp"),
    "GIF": ("image/gif", "gif"),
    "BMP": ("image/bmp", "bmp"),
}
# What a stored video or audio file is served as, from its container (never from what the sender
# claimed, except these more exact names for the same container).
CONTAINER_TYPES = {
    ("matroska", "video"): ("video/webm", "webm"),
    ("matroska", "audio"): ("audio/webm", "weba"),
    ("mp4", "video"): ("video/mp4", "mp4"),
    ("mp4", "audio"): ("audio/mp4", "m4a"),
    ("ogg", "video"): ("video/ogg", "ogv"),
    ("ogg", "audio"): ("audio/ogg", "ogg"),
    ("avi", "video"): ("video/x-msvideo", "avi"),
    ("wav", "audio"): ("audio/wav", "wav"),
    ("flac", "audio"): ("audio/flac", "flac"),
    ("mpeg-audio", "audio"): ("audio/mpeg", "mp3"),
}
EXACT_TYPES = {
    ("matroska", "video/x-matroska"): ("video/x-matroska", "mkv"),
    ("mp4", "video/quicktime"): ("video/quicktime", "mov"),
    ("mpeg-audio", "audio/aac"): ("audio/aac", "aac"),
}


@dataclass
class OpenedMedia:
    """A payload's bytes, ready to check and store: `file` is at its start."""

    file: IO[bytes]
    size: int
    sha256: str
    mime: str  # what the sender declared
    name: str  # the file name it came with ("" for a data URI)
    owned: bool = True  # a temporary file of ours, closed with this

    def close(self) -> None:
        if self.owned:
            self.file.close()


class MediaPayload:
    """Media bytes that came with a request (a data URI, an uploaded file), not stored yet."""

    mime = ""
    name = ""

    def placeholder(self) -> str:
        """What schema validation sees in place of the bytes (no schema limits a data URI's length)."""
        return f"data:{self.mime};base64,"

    def open(self, max_bytes: int) -> OpenedMedia:
        """The bytes, refusing more than `max_bytes` before reading them (MediaError)."""
        raise NotImplementedError

    def json_chunks(self) -> Iterator[bytes | memoryview]:
        """The value as JSON text, exactly as `json.dumps` would write it as a data URI string:
        what the request hash covers, given piece by piece rather than as one copy."""
        raise NotImplementedError

    def text(self) -> str:
        """The value as a string (for a data URI that turns out to be in a text field)."""
        return json.loads(b"".join(bytes(chunk) for chunk in self.json_chunks()))


def placeholders(data: Any) -> Any:
    """`data` as schema validation sees it: each payload a short stand-in string."""
    if isinstance(data, dict):
        return {key: placeholders(item) for key, item in data.items()}
    if isinstance(data, list):
        return [placeholders(item) for item in data]
    return data.placeholder() if isinstance(data, MediaPayload) else data


def too_large(max_bytes: int, name: str = "") -> MediaError:
    what = name or "The file"
    return MediaError(f"{what} is larger than {max_bytes // (1024 * 1024)} MB.", "too_large")


def _scratch_file(size: int) -> IO[bytes]:
    """Where `size` decoded bytes wait to be checked and stored: memory if small, else disk."""
    return io.BytesIO() if size <= SPOOL_BYTES else tempfile.TemporaryFile()  # closed by OpenedMedia


class DataUri(MediaPayload):
    """A base64 data URI: a string, or the raw bytes of one inside a JSON body (no copy made)."""

    def __init__(self, value: str | bytes | memoryview):
        self.value = value
        head = value[:512]
        head_text = head if isinstance(head, str) else bytes(head).decode("latin-1")
        match = DATA_URI.match(head_text)
        self.readable = bool(match and match.group("b64"))
        self.mime = (match.group("mime") or "").lower() if match else ""
        self.start = match.end() if match else 0

    def decoded_size(self) -> int:
        payload_length = len(self.value) - self.start
        tail = self.value[-2:]
        padding = (tail if isinstance(tail, str) else bytes(tail).decode("latin-1")).count("=")
        return payload_length * 3 // 4 - padding

    def open(self, max_bytes: int) -> OpenedMedia:
        if not self.readable:
            raise MediaError("This data URI cannot be read: it should look like data:image/png;base64,….")
        if self.decoded_size() > max_bytes:
            raise too_large(max_bytes)
        spool, digest, size = _scratch_file(self.decoded_size()), hashlib.sha256(), 0
        try:
            for start in range(self.start, len(self.value), DECODE_STEP):
                piece = self.value[start : start + DECODE_STEP]
                content = binascii.a2b_base64(
                    piece.encode("ascii") if isinstance(piece, str) else piece, strict_mode=True
                )
                digest.update(content)
                spool.write(content)
                size += len(content)
        except (binascii.Error, ValueError) as exc:  # UnicodeEncodeError is a ValueError
            spool.close()
            raise MediaError("This data URI is damaged: its data is not valid base64.") from exc
        spool.seek(0)
        return OpenedMedia(spool, size, digest.hexdigest(), self.mime, "")

    def json_chunks(self) -> Iterator[bytes | memoryview]:
        yield b'"'
        if isinstance(self.value, str):
            for start in range(0, len(self.value), DECODE_STEP):
                yield json.encoder.encode_basestring_ascii(self.value[start : start + DECODE_STEP])[
                    1:-1
                ].encode()
        else:  # taken from a JSON body only when it needs no escaping (api.json_body)
            yield self.value
        yield b'"'

    def text(self) -> str:
        return self.value if isinstance(self.value, str) else bytes(self.value).decode("ascii")


class UploadedMedia(MediaPayload):
    """A file uploaded with a form (Django's UploadedFile: on disk once it is large)."""

    def __init__(self, upload):
        self.upload = upload
        self.mime = (upload.content_type or "application/octet-stream").lower()
        self.name = upload.name or ""

    def open(self, max_bytes: int) -> OpenedMedia:
        if self.upload.size is not None and self.upload.size > max_bytes:
            raise too_large(max_bytes, self.name)
        digest, size = hashlib.sha256(), 0
        for chunk in self.upload.chunks():
            digest.update(chunk)
            size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes, self.name)
        self.upload.seek(0)
        return OpenedMedia(self.upload, size, digest.hexdigest(), self.mime, self.name, owned=False)

    def json_chunks(self) -> Iterator[bytes | memoryview]:
        # As the data URI the browser form used to send, so a resent form hashes as it did.
        yield json.dumps(f"data:{self.mime};base64,")[:-1].encode()
        self.upload.seek(0)
        while chunk := self.upload.read(3 * 256 * 1024):
            yield base64.b64encode(chunk)
        yield b'"'


@dataclass
class CheckedMedia:
    """A payload that passed `check_payload`: its bytes and what to serve them as."""

    opened: OpenedMedia
    content_type: str
    extension: str
    size: tuple[int, int] | None = None  # an image's width and height

    def close(self) -> None:
        self.opened.close()


def check_payload(kind: str, payload: MediaPayload, *, max_bytes: int, max_pixels: int) -> CheckedMedia:
    """Refuse a payload that is too large or not the `kind` of media claimed (the rules of
    `check_media_value`), reading it from its file; the type it is stored as comes from the
    content (Pillow's format, the container), not from what the sender declared."""
    opened = payload.open(max_bytes)
    try:
        mime = opened.mime
        if kind != "image" and mime and not mime.startswith(kind + "/"):
            raise MediaError(f"This should be a {kind} file, but it is {mime}.", "wrong_media_type")
        size = None
        if kind == "image":
            image_format, size = check_image(opened.file, max_pixels)
            content_type, extension = IMAGE_TYPES[image_format]
        else:
            head = opened.file.read(16)
            check_media_content(kind, head, max_pixels)
            container = container_of(head) or ""
            content_type, extension = EXACT_TYPES.get((container, mime)) or CONTAINER_TYPES[(container, kind)]
        opened.file.seek(0)
    except BaseException:
        opened.close()
        raise
    return CheckedMedia(opened, content_type, extension, size)
