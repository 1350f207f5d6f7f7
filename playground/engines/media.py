"""Media inputs (reference images, masks, videos, audio): finding them in an input, decoding data
URIs safely and checking that content is the kind of media it claims to be.

Safety rules: the size of a data URI is checked before it is decoded; images are opened by Pillow
with an explicit list of formats and a pixel cap checked before any pixel is decoded, so a
decompression bomb or an HTML page named .png is refused rather than loaded; a video or audio file
must start like a known container. Hosted URLs are checked (never fetched) here by `fetch.check_url`.
"""

import base64
import binascii
import io
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    from .fetch import Resolver

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
DATA_URI = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,", re.I
)
ROLE_KINDS = {
    "reference_images": "image",
    "mask": "image",
    "reference_video": "video",
    "reference_audio": "audio",
}


class MediaError(Exception):
    def __init__(self, message: str, code: str = "invalid_media"):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class MediaValue:
    path: tuple[str | int, ...]  # where in the input, e.g. ("image_urls", 0)
    kind: str  # image | video | audio
    value: str


def _kind_of(spec: dict, role_kind: str | None) -> str | None:
    hints = spec.get("x-playground") or {}
    if not isinstance(hints, dict):
        hints = {}
    kind = hints.get("uploadKind")
    if kind in ("image", "video", "audio"):
        return kind
    accept = str(hints.get("accept", ""))
    for candidate in ("image", "video", "audio"):
        if accept.startswith(candidate):
            return candidate
    if hints.get("widget") == "file-upload" or role_kind:
        return role_kind or "image"
    return None


def iter_media_values(schema: dict, roles: dict, data: dict) -> Iterator[MediaValue]:
    """Every media string in `data`: upload-hinted fields and the media roles, arrays and arrays
    of objects (`image_with_roles[0].url`) included."""
    role_of_field = {field: ROLE_KINDS.get(role) for role, field in roles.items()}
    for name, spec in (schema.get("properties") or {}).items():
        if name not in data or not isinstance(spec, dict):
            continue
        value = data[name]
        items = spec.get("items") if isinstance(spec.get("items"), dict) else {}
        if isinstance(value, str):
            kind = _kind_of(spec, role_of_field.get(name))
            if kind:
                yield MediaValue((name,), kind, value)
        elif isinstance(value, list) and items.get("type") == "object":
            for index, element in enumerate(value):
                if not isinstance(element, dict):
                    continue
                for sub, sub_spec in (items.get("properties") or {}).items():
                    kind = _kind_of(sub_spec, None) if isinstance(sub_spec, dict) else None
                    if kind and isinstance(element.get(sub), str):
                        yield MediaValue((name, index, sub), kind, element[sub])
        elif isinstance(value, list):
            kind = _kind_of({**items, "x-playground": spec.get("x-playground")}, role_of_field.get(name))
            if kind:
                for index, element in enumerate(value):
                    if isinstance(element, str):
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


def open_image(content: bytes, max_pixels: int) -> Image.Image:
    """Decode `content` as an image of a known format, refusing decompression bombs."""
    try:
        image = Image.open(io.BytesIO(content), formats=IMAGE_FORMATS)
    except Image.DecompressionBombError as exc:  # over Pillow's own hard cap, before ours
        raise MediaError("The image has more pixels than allowed.", "too_many_pixels") from exc
    except (Image.UnidentifiedImageError, OSError) as exc:
        raise MediaError("The file is not an image (PNG, JPEG, WebP, GIF or BMP).", "not_an_image") from exc
    width, height = image.size
    if width * height > max_pixels:
        raise MediaError(
            f"The image is {width}x{height} pixels, more than the {max_pixels:,} allowed.", "too_many_pixels"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except (
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombWarning,
        Image.DecompressionBombError,
    ) as exc:
        raise MediaError("The image could not be decoded.", "not_an_image") from exc
    return image


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
    item: MediaValue, *, max_bytes: int, max_pixels: int, resolver: "Resolver | None" = None
) -> None:
    """Refuse a media value at submit time: data URIs must hold the right kind of media; hosted
    URLs must pass the fetcher's scheme, port and address rules (their host is resolved with
    `resolver`, but nothing is downloaded: that happens when the task runs)."""
    value = item.value
    if is_data_uri(value):
        mime, content = decode_data_uri(value, max_bytes)
        if item.kind != "image" and mime and not mime.startswith(item.kind + "/"):
            raise MediaError(f"This should be a {item.kind} file, but it is {mime}.", "wrong_media_type")
        check_media_content(item.kind, content, max_pixels)
        return
    from .fetch import FetchError, check_url  # fetch uses this module's decoding

    scheme = value.split(":", 1)[0].lower() if ":" in value else ""
    if scheme not in ("http", "https"):
        raise MediaError("Must be a web address (http:// or https://) or a data URI.", "unsupported_url")
    try:
        check_url(value, resolver=resolver, unresolvable_ok=True)
    except FetchError as exc:
        raise MediaError(exc.message, exc.code) from exc
