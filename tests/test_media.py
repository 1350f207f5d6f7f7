"""Unit tests of playground/engines/media.py: finding media in an input and decoding it safely."""

import base64
import hashlib
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from playground.catalog.loading import ENTRIES_DIR, read_entry_file, validate_entry
from playground.engines import media
from playground.engines.media import (
    DataUri,
    MediaError,
    MediaValue,
    UploadedMedia,
    check_media_value,
    check_payload,
    decode_data_uri,
    iter_media_values,
    open_image,
)

MAX_PIXELS = 50_000_000


def entry(slug: str) -> dict:
    """A shipped catalog entry as the importer completes it (roles filled in), without the DB."""
    return validate_entry(read_entry_file(ENTRIES_DIR / f"{slug}.json"))


def encode(content: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(content).decode()


def image_bytes(size=(64, 48), fmt="PNG", mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, "teal" if mode == "RGB" else 0).save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def huge_png() -> bytes:
    """A 20000x20000 (400 M pixel) image that compresses to a few tens of kilobytes."""
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


# --- decode_data_uri -----------------------------------------------------------------------------


def test_it_decodes_a_base64_data_uri():
    assert decode_data_uri(encode(b"\x89PNG...", "Image/PNG"), 100) == ("image/png", b"\x89PNG...")


def test_it_refuses_an_oversize_data_uri_before_decoding(monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("the payload was decoded before its size was checked")

    monkeypatch.setattr(media.base64, "b64decode", no_decoding)
    value = "data:image/png;base64," + "A" * 4_000_000

    with pytest.raises(MediaError) as caught:
        decode_data_uri(value, 1024)

    assert caught.value.code == "too_large"


def test_it_checks_the_size_before_the_base64_is_validated():
    # Corrupt and oversize: the size check answers first, so nothing is decoded.
    with pytest.raises(MediaError) as caught:
        decode_data_uri("data:image/png;base64," + "!" * 10_000, 100)

    assert caught.value.code == "too_large"


def test_it_accepts_a_payload_just_under_the_limit():
    content = b"x" * 3000  # a multiple of 3: no padding
    assert decode_data_uri(encode(content), 3000)[1] == content


def test_it_accepts_a_payload_of_exactly_the_limit_with_padding():
    content = b"x" * 3001  # encodes with "==" padding
    assert decode_data_uri(encode(content), 3001)[1] == content


@pytest.mark.parametrize(
    "value",
    [
        "data:image/png,not-base64-at-all",
        "image/png;base64,iVBORw0KGgo=",
        "https://example.com/a.png",
        "",
    ],
    ids=["no-base64-marker", "no-data-scheme", "url", "empty"],
)
def test_it_refuses_what_is_not_a_base64_data_uri(value):
    with pytest.raises(MediaError) as caught:
        decode_data_uri(value, 1024)

    assert caught.value.code == "invalid_media"
    assert (
        caught.value.message == "This data URI cannot be read: it should look like data:image/png;base64,…."
    )


@pytest.mark.parametrize("payload", ["@@@@", "abc", "YWJj\nZGVm", "YW=Jj"])
def test_it_refuses_corrupt_base64(payload):
    with pytest.raises(MediaError) as caught:
        decode_data_uri("data:image/png;base64," + payload, 1024)

    assert caught.value.code == "invalid_media"
    assert caught.value.message == "This data URI is damaged: its data is not valid base64."


# --- open_image ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP"])
def test_it_opens_a_normal_image(fmt):
    image = open_image(image_bytes((64, 48), fmt), MAX_PIXELS)

    assert image.size == (64, 48)
    assert image.format == fmt


@pytest.mark.parametrize(
    "content",
    [
        b"<!DOCTYPE html><html><head><title>x</title></head><body>hello</body></html>",
        b"%PDF-1.7\n",
        b"",
        image_bytes(fmt="TIFF"),  # a real image, but not in the accepted formats
    ],
    ids=["html", "pdf", "empty", "tiff"],
)
def test_it_refuses_what_is_not_an_accepted_image(content):
    with pytest.raises(MediaError) as caught:
        open_image(content, MAX_PIXELS)

    assert caught.value.code == "not_an_image"


def test_it_refuses_a_truncated_image():
    buffer = io.BytesIO()
    Image.effect_noise((256, 256), 64).save(buffer, "PNG")
    content = buffer.getvalue()
    assert open_image(content, MAX_PIXELS).size == (256, 256)

    with pytest.raises(MediaError) as caught:
        open_image(content[: len(content) // 2], MAX_PIXELS)

    assert caught.value.code == "not_an_image"


def test_it_refuses_an_image_over_the_pixel_cap_below_pillows_own_limit():
    buffer = io.BytesIO()
    Image.new("1", (8000, 7000)).save(buffer, "PNG", optimize=True)  # 56 M pixels

    with pytest.raises(MediaError) as caught:
        open_image(buffer.getvalue(), MAX_PIXELS)

    assert caught.value.code == "too_many_pixels"


def test_the_decompression_bomb_is_small(huge_png):
    assert len(huge_png) < 200_000


def test_it_refuses_a_decompression_bomb(huge_png):
    with pytest.raises(MediaError) as caught:
        open_image(huge_png, MAX_PIXELS)

    assert caught.value.code == "too_many_pixels"


def test_it_refuses_a_decompression_bomb_submitted_as_a_data_uri(huge_png):
    item = MediaValue(("image_urls", 0), "image", encode(huge_png))

    with pytest.raises(MediaError) as caught:
        check_media_value(item, max_bytes=20 * 1024 * 1024, max_pixels=MAX_PIXELS)

    assert caught.value.code == "too_many_pixels"


# --- iter_media_values ---------------------------------------------------------------------------


def test_it_finds_reference_images_and_the_mask_of_the_seed():
    seed = entry("gemini-3-pro-image-preview-official")
    data = {"prompt": "p", "n": 2, "size": "1:1", "image_urls": ["A", "B"], "mask_url": "M"}

    found = list(iter_media_values(seed["input_schema"], seed["roles"], data))

    assert found == [
        MediaValue(("mask_url",), "image", "M"),
        MediaValue(("image_urls", 0), "image", "A"),
        MediaValue(("image_urls", 1), "image", "B"),
    ]


def test_it_finds_the_mask_only_through_its_role():
    seed = entry("gemini-3-pro-image-preview-official")
    data = {"prompt": "p", "mask_url": "M"}
    hints = seed["input_schema"]["properties"]["mask_url"].get("x-playground") or {}
    assert "uploadKind" not in hints and "accept" not in hints and "widget" not in hints

    assert list(iter_media_values(seed["input_schema"], seed["roles"], data)) == [
        MediaValue(("mask_url",), "image", "M")
    ]
    assert list(iter_media_values(seed["input_schema"], {}, data)) == []


def test_it_finds_urls_inside_arrays_of_objects():
    r2v = entry("wan2-7-r2v")
    data = {
        "prompt": "p",
        "image_with_roles": [
            {"url": "U0", "role": "reference_image"},
            {"url": "U1", "role": "reference_image"},
        ],
    }

    found = list(iter_media_values(r2v["input_schema"], r2v["roles"], data))

    assert found == [
        MediaValue(("image_with_roles", 0, "url"), "image", "U0"),
        MediaValue(("image_with_roles", 1, "url"), "image", "U1"),
    ]


def test_it_finds_videos_with_the_kind_video():
    edit = entry("wan2-7-videoedit")
    data = {"prompt": "p", "video_urls": ["https://example.com/v.mp4"]}

    assert list(iter_media_values(edit["input_schema"], edit["roles"], data)) == [
        MediaValue(("video_urls", 0), "video", "https://example.com/v.mp4")
    ]


def test_it_ignores_fields_that_are_not_media():
    seed = entry("gemini-3-pro-image-preview-official")
    data = {"prompt": "data:image/png;base64,AAAA", "size": "1:1", "resolution": "1K", "n": 1}

    assert list(iter_media_values(seed["input_schema"], seed["roles"], data)) == []


def test_it_finds_a_single_start_image_of_a_video_model():
    kling = entry("kling-v3")
    data = {"prompt": "p", "image_url": "I"}

    assert list(iter_media_values(kling["input_schema"], kling["roles"], data)) == [
        MediaValue(("image_url",), "image", "I")
    ]


# --- check_media_value ---------------------------------------------------------------------------


def check(value: str, kind: str = "image") -> None:
    check_media_value(
        MediaValue(("image_urls", 0), kind, value), max_bytes=1024 * 1024, max_pixels=MAX_PIXELS
    )


@pytest.mark.parametrize(
    "value",
    [
        "file:///etc/passwd",
        "gopher://example.com/1",
        "ftp://example.com/a.png",
        "just a string",
        "/etc/passwd",
        "//example.com/a.png",
    ],
)
def test_it_refuses_what_is_not_an_http_url_or_data_uri(value):
    with pytest.raises(MediaError) as caught:
        check(value)

    assert caught.value.code == "unsupported_url"


@pytest.mark.parametrize("value", ["https://example.com/a.png", "HTTP://example.com/a.png?x=1"])
def test_it_accepts_http_urls(value):
    check(value)


def test_it_accepts_an_image_data_uri():
    check(encode(image_bytes(fmt="JPEG"), "image/jpeg"))


def test_it_refuses_an_image_data_uri_that_is_not_an_image():
    with pytest.raises(MediaError) as caught:
        check(encode(b"<html><body>hi</body></html>", "image/png"))

    assert caught.value.code == "not_an_image"


def test_it_refuses_a_data_uri_of_the_wrong_media_type():
    with pytest.raises(MediaError) as caught:
        check(encode(b"\x1a\x45\xdf\xa3", "image/png"), kind="video")

    assert caught.value.code == "wrong_media_type"
    check(encode(b"\x1a\x45\xdf\xa3", "video/webm"), kind="video")


@pytest.mark.parametrize(
    ("content", "mime", "kind", "code"),
    [
        (b"<!doctype html><p>hi</p>", "video/mp4", "video", "not_video"),
        (b"just some text", "audio/mpeg", "audio", "not_audio"),
    ],
    ids=["html-as-mp4", "text-as-mp3"],
)
def test_it_refuses_a_video_or_audio_data_uri_without_a_container_signature(content, mime, kind, code):
    with pytest.raises(MediaError) as caught:
        check(encode(content, mime), kind=kind)

    assert caught.value.code == code


@pytest.mark.parametrize(
    "value", ["http://127.0.0.1/a.png", "http://10.0.0.1/a.png", "https://example.com:8443/a.png"]
)
def test_it_refuses_a_hosted_url_the_fetcher_would_refuse(value):
    with pytest.raises(MediaError) as caught:
        check(value)

    assert caught.value.code in ("forbidden_address", "forbidden_port")


def test_it_refuses_an_oversize_data_uri():
    with pytest.raises(MediaError) as caught:
        check(encode(b"\0" * (2 * 1024 * 1024)))

    assert caught.value.code == "too_large"


# --- check_payload: media that came with a request, checked on its bytes --------------------------


def noise(size=(120, 90), fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise(size, 80).convert("RGB").save(buffer, fmt)
    return buffer.getvalue()


def check_bytes(content: bytes, mime: str = "image/png", kind: str = "image"):
    return check_payload(kind, DataUri(encode(content, mime)), max_bytes=1024 * 1024, max_pixels=MAX_PIXELS)


@pytest.mark.parametrize(
    ("fmt", "content_type", "extension"),
    [
        ("PNG", "image/png", "png"),
        ("JPEG", "image/jpeg", "jpg"),
        ("WEBP", "image/webp", "webp"),
        ("GIF", "image/gif", "gif"),
    ],
)
def test_a_payload_is_stored_as_the_format_it_is_whatever_it_was_called(fmt, content_type, extension):
    content = noise(fmt=fmt)
    checked = check_bytes(content, "application/octet-stream")
    assert (checked.content_type, checked.extension) == (content_type, extension)
    assert checked.opened.file.read() == content and checked.opened.size == len(content)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_truncated_image_payload_is_refused(fmt):
    content = noise(fmt=fmt)
    with pytest.raises(MediaError) as caught:
        check_bytes(content[: len(content) * 2 // 3])
    assert caught.value.code == "not_an_image"


def test_a_png_payload_with_a_damaged_chunk_is_refused():
    content = bytearray(noise())
    content[len(content) // 2] ^= 0xFF
    with pytest.raises(MediaError) as caught:
        check_bytes(bytes(content))
    assert caught.value.code == "not_an_image"


def test_a_decompression_bomb_payload_is_refused_from_its_header(huge_png):
    with pytest.raises(MediaError) as caught:
        check_bytes(huge_png)
    assert caught.value.code == "too_many_pixels"


def test_a_payload_is_decoded_in_steps_and_hashed(monkeypatch):
    monkeypatch.setattr(media, "DECODE_STEP", 8)
    content = bytes(range(256)) * 3
    opened = DataUri(encode(content)).open(10_000)
    assert opened.file.read() == content
    assert opened.sha256 == hashlib.sha256(content).hexdigest()


@pytest.mark.parametrize("payload", ["QUJD=", "QU=JD", "QUJD!", "QUJ"])
def test_a_damaged_payload_is_refused(payload, monkeypatch):
    monkeypatch.setattr(media, "DECODE_STEP", 4)
    with pytest.raises(MediaError) as caught:
        DataUri("data:image/png;base64," + payload).open(10_000)
    assert "damaged" in caught.value.message


def test_an_oversize_payload_is_refused_before_it_is_read():
    upload = SimpleUploadedFile("big.png", b"\0" * 2048, "image/png")
    with pytest.raises(MediaError) as caught:
        UploadedMedia(upload).open(1024)
    assert (caught.value.code, caught.value.message) == ("too_large", "big.png is larger than 0 MB.")


@pytest.mark.parametrize(
    ("mime", "kind", "stored_as"),
    [
        ("video/webm", "video", ("video/webm", "webm")),
        ("video/x-matroska", "video", ("video/x-matroska", "mkv")),
        ("audio/webm", "audio", ("audio/webm", "weba")),
    ],
)
def test_video_and_audio_are_stored_as_their_container(mime, kind, stored_as):
    checked = check_bytes(b"\x1a\x45\xdf\xa3" + bytes(40), mime, kind)
    assert (checked.content_type, checked.extension) == stored_as
