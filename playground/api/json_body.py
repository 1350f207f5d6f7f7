"""Reading a task body without copying the data URIs in it.

`json.loads` would hold the raw body, its decoded text and every string parsed out of it at once:
three copies of a body that is mostly base64. Here each large data URI inside `input` stays where
it is in the raw bytes, as a `DataUri` payload (a memoryview, no copy), and only the rest of the
body, with a short marker in each such string's place, goes through `json.loads`. The payload is
later decoded in steps into a temporary file and stored (see `generations.inputs`).

Only strings that need no JSON escaping (printable ASCII without `"` or `\\`, as base64 data URIs
are) are taken out, so the value is exactly the bytes between the quotes, and a body that is not
valid JSON stays invalid. A body with more strings than any task has is parsed plainly.

Arrays and objects nested deeper than `text.MAX_JSON_DEPTH` are refused (`TooDeep`) before
anything walks them: every walk after this one may recurse.
"""

import json
import re
import secrets
from typing import Any

from playground.catalog.text import MAX_JSON_DEPTH, nesting_depth
from playground.generations.inputs import DataUri

QUOTE_OR_BACKSLASH = re.compile(rb'["\\]')
PLAIN_DATA_URI = re.compile(rb"data:[\x20\x21\x23-\x5b\x5d-\x7e]*")
NEXT_TOKEN = re.compile(rb"[ \t\r\n]*(.?)", re.S)
MIN_TAKEN = 4096  # smaller strings cost nothing worth avoiding
MAX_STRINGS = 10_000  # a real task has a few dozen


class TooDeep(ValueError):
    """JSON nested deeper than MAX_JSON_DEPTH (or too deep for the parser itself)."""

    def __init__(self):
        super().__init__(f"arrays and objects are nested more than {MAX_JSON_DEPTH} levels deep")


def _loads(raw: bytes) -> Any:
    """`json.loads`, refusing JSON nested deeper than MAX_JSON_DEPTH (TooDeep)."""
    try:
        data = json.loads(raw)
    except RecursionError:  # the parser's own limit: ten thousand `[` need no traceback
        raise TooDeep() from None
    if nesting_depth(data) > MAX_JSON_DEPTH:
        raise TooDeep()
    return data


def _string_end(raw: bytes, start: int) -> tuple[int, bool]:
    """Where the JSON string whose content begins at `start` ends (its closing quote), and
    whether it holds an escape; (-1, _) if it never ends."""
    escaped, position = False, start
    while match := QUOTE_OR_BACKSLASH.search(raw, position):
        if match.group() == b'"':
            return match.start(), escaped
        escaped, position = True, match.start() + 2
    return -1, escaped


def parse_task_body(raw: bytes) -> Any:
    """The body as `json.loads(raw)` would return it, except that a large data URI inside
    `input` is a DataUri payload over `raw` rather than a str. Raises ValueError like json.loads,
    TooDeep (a ValueError) for JSON nested deeper than MAX_JSON_DEPTH."""
    if b'"data:' not in raw:
        return _loads(raw)
    view, marker = memoryview(raw), secrets.token_hex(12)
    pieces: list[bytes | memoryview] = []
    payloads: dict[str, DataUri] = {}
    kept_from = scanned = strings = 0
    while (start := raw.find(b'"', scanned)) >= 0 and strings < MAX_STRINGS:
        end, escaped = _string_end(raw, start + 1)
        if end < 0:
            break  # unterminated: json.loads will say so
        strings += 1
        scanned = end + 1
        if escaped or end - start - 1 < MIN_TAKEN or raw[start + 1 : start + 6] != b"data:":
            continue
        following = NEXT_TOKEN.match(raw, end + 1)
        if following and following.group(1) == b":":
            continue  # an object key, not a value
        if not PLAIN_DATA_URI.fullmatch(raw, start + 1, end):
            continue
        name = f"{marker}-{len(payloads)}"
        payloads[name] = DataUri(view[start + 1 : end])
        pieces += [view[kept_from : start + 1], name.encode()]
        kept_from = end
    if strings >= MAX_STRINGS or not payloads:
        return _loads(raw)
    pieces.append(view[kept_from:])
    data = _loads(b"".join(pieces))
    return _restore(data, payloads)


def _restore(data: Any, payloads: dict[str, DataUri]) -> Any:
    """Put each payload in its marker's place: inside `input` as itself, anywhere else back as the
    text it was (a `model` or `webhook_url` is never a file)."""

    def walk(value: Any, as_text: bool) -> Any:
        if isinstance(value, dict):
            return {key: walk(item, as_text) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, as_text) for item in value]
        if isinstance(value, str) and value in payloads:
            return payloads[value].text() if as_text else payloads[value]
        return value

    if not isinstance(data, dict):
        return walk(data, True)
    return {key: walk(value, key != "input") for key, value in data.items()}
