"""Reading a task body without copying its data URIs (api.json_body), and hashing a request with
payloads in it exactly as if they were the strings they came as (the idempotency hash)."""

import base64
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from playground.api.json_body import MIN_TAKEN, parse_task_body
from playground.engines.media import DataUri, MediaPayload, UploadedMedia
from playground.generations.inputs import canonical_json_chunks
from playground.generations.services import request_hash

BIG = "data:image/png;base64," + base64.b64encode(bytes(range(256)) * 40).decode()
assert len(BIG) > MIN_TAKEN


def as_text(value):
    """The parse with every payload back as its string: what json.loads gives."""
    if isinstance(value, dict):
        return {key: as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_text(item) for item in value]
    return value.text() if isinstance(value, MediaPayload) else value


BODIES = [
    {"model": "m", "input": {"prompt": "plain", "image_urls": [BIG, "https://example.com/a.png", BIG]}},
    {"model": "m", "input": {"prompt": 'say "' + BIG + '" twice', "mask_url": BIG}},  # escaped quotes
    {"model": "m", "input": {"image_with_roles": [{"url": BIG, "role": "r"}, {"url": "data:,x"}]}},
    {"model": "m", "input": {BIG: BIG, "n": 1.5, "ok": True, "none": None, "é": "ü\u2028"}},
    {"model": BIG, "webhook_url": BIG, "input": {"image_urls": [BIG]}},
    {"model": "m", "input": {"prompt": "月光下的竹林小径", "image_urls": [BIG + "\\/"]}},
    [BIG, {"input": BIG}],
    "data:just a string " + "x" * 5000,
]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("indent", [None, 2])
def test_it_parses_what_json_loads_parses(body, indent):
    raw = json.dumps(body, indent=indent, ensure_ascii=indent is None).encode()
    assert as_text(parse_task_body(raw)) == json.loads(raw)


def test_large_data_uris_inside_input_are_payloads_over_the_body_and_nothing_else_is():
    raw = json.dumps(BODIES[4]).encode()
    parsed = parse_task_body(raw)
    assert parsed["model"] == BIG and parsed["webhook_url"] == BIG  # never files
    [payload] = parsed["input"]["image_urls"]
    assert isinstance(payload, DataUri) and isinstance(payload.value, memoryview)
    assert payload.value.obj is raw  # the body's own bytes, not a copy
    assert payload.text() == BIG

    prompt = parse_task_body(json.dumps(BODIES[1]).encode())["input"]["prompt"]
    assert prompt == 'say "' + BIG + '" twice'  # a string with escapes is left to json.loads


def test_a_key_is_never_taken_out():
    parsed = parse_task_body(json.dumps({"input": {BIG: 1}}).encode())
    assert parsed == {"input": {BIG: 1}}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"input": {"image_urls": ["' + BIG.encode() + b"\n" + BIG.encode() + b'"]}}',  # raw newline
        b'{"input": {"image_urls": ["' + BIG.encode() + b'"]}',  # unbalanced
        b'{"input": {"image_urls": ["' + BIG.encode(),  # unterminated
    ],
)
def test_a_body_that_is_not_json_stays_refused(raw):
    with pytest.raises(ValueError):
        json.loads(raw)
    with pytest.raises(ValueError):
        parse_task_body(raw)


VALUES = [
    {"b": [1, 2.5, -0.0, 1e300, True, False, None], "a": {"z": "", "y": []}, "é": '\u2028\x00"\\/'},
    [],
    {},
    "text",
    {"emoji": "🦊", "nested": [[{"deep": [{}]}]]},
]


@pytest.mark.parametrize("value", VALUES)
def test_the_canonical_chunks_are_json_dumps_sorted_and_compact(value):
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"))
    assert b"".join(bytes(chunk) for chunk in canonical_json_chunks(value)) == expected.encode()


def test_a_request_hashes_the_same_whether_its_data_uris_are_strings_or_payloads():
    raw = json.dumps(BODIES[0]).encode()
    with_payloads, plain = parse_task_body(raw), json.loads(raw)
    assert request_hash("m", with_payloads["input"]) == request_hash("m", plain["input"])
    other = json.loads(raw.replace(b"AAEC", b"AAED", 1))
    assert request_hash("m", other["input"]) != request_hash("m", plain["input"])


def test_an_upload_hashes_as_the_data_uri_it_stands_for():
    content = bytes(range(256)) * 3000  # not a multiple of the encoding step's 3 bytes
    upload = SimpleUploadedFile("a.png", content, "image/png")
    as_data_uri = "data:image/png;base64," + base64.b64encode(content).decode()
    assert request_hash("m", {"image_urls": [UploadedMedia(upload)]}) == request_hash(
        "m", {"image_urls": [as_data_uri]}
    )
    assert request_hash("m", {"image_urls": [DataUri(as_data_uri)]}) == request_hash(
        "m", {"image_urls": [as_data_uri]}
    )
