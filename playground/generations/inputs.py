"""Input files: media that comes with a request (an upload, a data URI) is stored once per owner,
and the task's input references it by URL, so a task row, its page, its copy-as-code and every
re-run stay small.

A reference is `<origin>/inputs/<id>/<name>` (`input_url`), served by `api.views.input_file` to
its owner (session or API key) and, with a signed `?token=` (like output URLs), to anyone holding
the link: copy-as-code and the upstream platform get signed ones. A URL whose path has that shape
is taken as one of ours on whatever host it names (the host may have been renamed since); at
submit it must name a file of the submitter (or carry a valid token), and the task keeps it
unsigned. Engines never fetch our own inputs over HTTP: the runner hands them `StoredInput`s that
read the file from storage (`stored_inputs_for`).

Submitting goes: `as_payloads` (data URIs in media fields become payloads) -> `prepare_inputs`
(schema, then every media value checked on its bytes) -> `store_inputs` (files written, payloads
replaced by references). The request hash is taken before any of this, over the request as
received (`canonical_json_chunks`), so a replay with the same data URI is recognised.
"""

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.urls import reverse

from playground.catalog.models import CatalogEntry
from playground.catalog.validation import FieldError, field_path, validate_input
from playground.engines.base import EngineError, StoredInput
from playground.engines.media import (
    CheckedMedia,
    DataUri,
    MediaError,
    MediaPayload,
    PixelBudget,
    check_media_value,
    check_payload,
    is_data_uri,
    iter_media_values,
    open_image_header,
    placeholders,
)

from .models import InputFile, new_input_id
from .outputs import file_token, token_is_valid

SALT = "playground.inputs"
REFERENCE_PATH = re.compile(r"^/inputs/(?P<id>in_[0-9a-f]{24})/(?P<name>[A-Za-z0-9_.-]{1,120})$")
UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")

Path = tuple[str | int, ...]


# --- References ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputReference:
    id: str
    name: str
    token: str = ""


def parse_reference(value: Any) -> InputReference | None:
    """The input file a URL names (`http://host/inputs/in_…/photo.png[?token=…]`, or just its
    path), else None."""
    if not isinstance(value, str) or "/inputs/in_" not in value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme not in ("", "http", "https") or (parts.scheme and not parts.netloc):
        return None
    match = REFERENCE_PATH.match(parts.path)
    if not match:
        return None
    token = (parse_qs(parts.query).get("token") or [""])[0]
    return InputReference(match["id"], match["name"], token)


def input_url(base: str, input_id: str, name: str, *, signed: bool = False) -> str:
    """The URL of an input file under `base` (an origin, or "" for the bare path); `signed` adds
    a token that lets anyone holding the link read it (for a PLAYGROUND_FILE_URL_TTL)."""
    url = f"{base.rstrip('/')}{reverse('input-file', args=[input_id, name])}"
    return f"{url}?token={file_token(input_id, name, salt=SALT)}" if signed else url


def input_token_is_valid(input_id: str, name: str, token: str) -> bool:
    return bool(token) and token_is_valid(input_id, name, token, salt=SALT)


def shared_input(entry: CatalogEntry, data: Any, base: str, owner_id: int | None) -> Any:
    """`data` with each of `owner_id`'s input files that it uses as media made absolute under
    `base` and signed: for code people copy and run elsewhere, and for a guest's form (a guest
    needs the token, see `resolve_reference`). Only media fields are looked at, and only the
    owner's own files signed: a reference typed anywhere else (into a prompt) or naming someone
    else's file stays as it was, so no page signs a file its viewer could not read."""
    references = {}
    for item in iter_media_values(entry.input_schema, entry.roles, data):
        if reference := parse_reference(item.value):
            references[item.path] = reference
    if not references or owner_id is None:
        return data
    ids = {reference.id for reference in references.values()}
    owned = set(InputFile.objects.filter(owner_id=owner_id, pk__in=ids).values_list("pk", flat=True))
    for path, reference in references.items():
        if reference.id in owned:
            data = _replace_at(data, path, input_url(base, reference.id, reference.name, signed=True))
    return data


# --- The request hash ------------------------------------------------------------------------------


def canonical_json_chunks(value: Any) -> Iterator[bytes | memoryview]:
    """`json.dumps(value, sort_keys=True, separators=(",", ":"))` piece by piece, with each
    payload written as the data URI it came as (without joining it into one more copy)."""
    if isinstance(value, MediaPayload):
        yield from value.json_chunks()
    elif isinstance(value, dict):
        yield b"{"
        for index, key in enumerate(sorted(value)):
            yield (b"," if index else b"") + json.dumps(key).encode() + b":"
            yield from canonical_json_chunks(value[key])
        yield b"}"
    elif isinstance(value, list):
        yield b"["
        for index, item in enumerate(value):
            if index:
                yield b","
            yield from canonical_json_chunks(item)
        yield b"]"
    else:
        yield json.dumps(value).encode()


# --- Submitting: payloads, checks, storing -----------------------------------------------------------


def _replace_at(value: Any, path: Path, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace_at(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace_at(copy[head], rest, new)
    return copy


def as_payloads(entry: CatalogEntry, data: Any) -> Any:
    """`data` with every data URI in a media field as a payload (to be checked and stored), and
    any payload outside one back to text (a prompt may start with "data:" too)."""
    if not isinstance(data, dict):
        return data
    media = {item.path: item.value for item in iter_media_values(entry.input_schema, entry.roles, data)}

    def convert(value: Any, path: Path) -> Any:
        if isinstance(value, dict):
            return {key: convert(item, (*path, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [convert(item, (*path, index)) for index, item in enumerate(value)]
        if path in media:
            return DataUri(value) if isinstance(value, str) and is_data_uri(value) else value
        return value.text() if isinstance(value, MediaPayload) else value

    return convert(data, ())


@dataclass
class PreparedInput:
    """A media value that passed its checks and becomes a reference when stored: new bytes
    (`checked`) or a file stored here already (`stored`)."""

    path: Path
    kind: str
    checked: CheckedMedia | None = None
    stored: InputFile | None = None

    def close(self) -> None:
        if self.checked is not None:
            self.checked.close()


def release(prepared: list[PreparedInput]) -> None:
    for item in prepared:
        item.close()


def resolve_reference(reference: InputReference, owner, guest: str = "") -> InputFile:
    """The input file a submitted reference names: the submitter's own, or anyone's with a valid
    signed token. Anyone else's is as missing as a file that never existed. `owner` None (the
    form's own check, before it knows who submits) asks only that the file exists.

    A demo-pass guest submits as the pass's owner but owns nothing: the files of the owner and of
    the other guests are all the owner's, so a guest needs the token (their own pages hand them
    signed references, `shared_input`)."""
    row = InputFile.objects.filter(pk=reference.id, name=reference.name).first()
    readable = row is not None and (
        owner is None
        or (row.owner_id == owner.pk and not guest)
        or input_token_is_valid(reference.id, reference.name, reference.token)
    )
    if not readable or not default_storage.exists(row.file):
        raise MediaError("This file is not stored here (any more): upload it again.", "input_not_found")
    return row


def stored_image_size(row: InputFile, max_pixels: int) -> tuple[int, int]:
    """The width and height of a stored input image, read from its header."""
    try:
        with default_storage.open(row.file, "rb") as handle:
            return open_image_header(handle, max_pixels).size
    except OSError as exc:
        message = "This file is not stored here (any more): upload it again."
        raise MediaError(message, "input_not_found") from exc


def prepare_inputs(
    entry: CatalogEntry, data: Any, owner=None, guest: str = ""
) -> tuple[list[FieldError], list[PreparedInput]]:
    """Every problem with `data` (from `as_payloads`) for `entry`, schema and rules first, then
    each media value on its bytes; or, with none, the media values ready to store. Hosted URLs are
    checked (not fetched) as before. Images are held to a pixel cap each and one for the task
    (data URIs, uploads and stored files here, read from their headers; hosted images when the
    task runs). Call `release` on what is returned once done with it."""
    errors = validate_input(entry, placeholders(data))
    if errors:
        return errors, []
    prepared: list[PreparedInput] = []
    limits = {
        "max_bytes": settings.PLAYGROUND_MAX_INPUT_IMAGE_BYTES,
        "max_pixels": settings.PLAYGROUND_MAX_INPUT_IMAGE_PIXELS,
    }
    budget = PixelBudget(settings.PLAYGROUND_MAX_TASK_PIXELS)
    for item in iter_media_values(entry.input_schema, entry.roles, data):
        try:
            size = None
            if isinstance(item.value, MediaPayload):
                checked = check_payload(item.kind, item.value, **limits)
                prepared.append(PreparedInput(item.path, item.kind, checked=checked))
                size = checked.size
            elif reference := parse_reference(item.value):
                row = resolve_reference(reference, owner, guest)
                prepared.append(PreparedInput(item.path, item.kind, stored=row))
                if item.kind == "image":
                    size = stored_image_size(row, limits["max_pixels"])
            else:
                size = check_media_value(item, **limits)
            if size is not None:
                budget.add(size)
        except MediaError as exc:
            # Several files may be chosen for one field: say which one (an upload has its name).
            name = getattr(item.value, "name", "")
            message = exc.message if not name or name in exc.message else f"{name}: {exc.message}"
            errors.append(FieldError(field_path(item.path), message, exc.code))
    if errors:
        release(prepared)
        return errors, []
    return [], prepared


def file_name(original: str, extension: str, kind: str) -> str:
    """A stored input's name: the uploaded file's (made URL-safe) with the extension of what it
    really is; `image.png` and the like for a data URI."""
    stem = UNSAFE_NAME.sub("-", PurePosixPath(original.replace("\\", "/")).stem).strip("-.")[:60]
    return f"{stem or kind}.{extension}"


def save_input_file(owner, item: PreparedInput) -> InputFile:
    """The owner's input file holding `item`'s bytes: the one they have already if the bytes are
    the same (a replay, a re-run, the same photo twice), else a new one."""
    if item.checked is not None:
        opened = item.checked.opened
        source, sha256, size = opened.file, opened.sha256, opened.size
        content_type = item.checked.content_type
        name = file_name(opened.name, item.checked.extension, item.kind)
    else:  # someone else's file, shared with a signed link: the submitter gets a copy
        row = item.stored
        source, sha256, size = default_storage.open(row.file, "rb"), row.sha256, row.size
        content_type, name = row.content_type, row.name
    try:
        existing = InputFile.objects.filter(owner=owner, sha256=sha256).first()
        if existing is not None and default_storage.exists(existing.file):
            return existing
        source.seek(0)
        input_id = new_input_id()
        path = default_storage.save(f"inputs/{owner.pk}/{input_id}-{name}", File(source, name=name))
    finally:
        if item.checked is None:
            source.close()
    if existing is not None:  # its file was lost: this copy takes its place
        InputFile.objects.filter(pk=existing.pk).update(file=path)
        existing.file = path
        return existing
    try:
        with transaction.atomic():
            return InputFile.objects.create(
                id=input_id,
                owner=owner,
                name=name,
                file=path,
                content_type=content_type,
                size=size,
                sha256=sha256,
            )
    except IntegrityError:  # the same bytes, stored by a concurrent request a moment ago
        default_storage.delete(path)
        return InputFile.objects.get(owner=owner, sha256=sha256)


def store_inputs(owner, data: Any, prepared: list[PreparedInput], base_url: str = "") -> Any:
    """`data` with each prepared media value replaced by the URL of its input file (under
    `base_url`, else PLAYGROUND_PUBLIC_URL, else a bare path). Writes files: call it outside any
    transaction. Releases `prepared`."""
    base = base_url or settings.PLAYGROUND_PUBLIC_URL
    try:
        for item in prepared:
            row = item.stored
            if row is None or row.owner_id != owner.pk:
                row = save_input_file(owner, item)
            data = _replace_at(data, item.path, input_url(base, row.pk, row.name))
    finally:
        release(prepared)
    return data


# --- Running: the engine reads our own inputs from storage --------------------------------------------


def _read_stored(path: str, where: str) -> bytes:
    try:
        with default_storage.open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise EngineError("input_unavailable", f"{where}: the stored file could not be read.") from exc


def _walk_strings(value: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_strings(item, (*path, index))
    elif isinstance(value, str):
        yield path, value


def stored_inputs_for(owner_id: int, data: Any, describe: Callable[[Path], str]) -> dict[str, StoredInput]:
    """The input files `data` references, by the URL as written there, for an engine to read
    from storage; each with a signed public URL when this server has one (PLAYGROUND_PUBLIC_URL),
    for an engine that passes inputs on by URL. A reference to a file that is gone (or not the
    owner's) fails the task (`input_unavailable`), naming the field by `describe(path)`."""
    references = {
        value: (path, ref) for path, value in _walk_strings(data) if (ref := parse_reference(value))
    }
    if not references:
        return {}
    ids = {ref.id for _, ref in references.values()}
    rows = {row.pk: row for row in InputFile.objects.filter(owner_id=owner_id, pk__in=ids)}
    public = settings.PLAYGROUND_PUBLIC_URL
    found = {}
    for value, (path, ref) in references.items():
        row = rows.get(ref.id)
        if row is None or row.name != ref.name or not default_storage.exists(row.file):
            raise EngineError("input_unavailable", f"{describe(path)}: this file is no longer stored here.")
        found[value] = StoredInput(
            name=row.name,
            content_type=row.content_type,
            size=row.size,
            read=partial(_read_stored, row.file, describe(path)),
            shared_url=input_url(public, row.pk, row.name, signed=True) if public else "",
        )
    return found
