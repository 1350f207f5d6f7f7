"""What text a request may carry, and how text stored before these rules is shown: one rule for
the API, the form and the pages.

Refused at submit (422 naming the field): a lone surrogate (JSON lets "\\ud800" through, but it is
no character: no page, file or PostgreSQL column can hold it), NUL and every other control character
(C0, DEL, C1) except tab and line breaks (\\n and \\r\\n). JSON is refused nested deeper than
MAX_JSON_DEPTH (a task's input is a few levels deep; deeper only buys recursion).

Text stored by an older version is repaired where it is read (`repair_text`): each refused code
point becomes U+FFFD, NUL is dropped, so every page renders whatever is stored.
"""

import re
from typing import Any

from django.conf import settings

MAX_JSON_DEPTH = 32
MAX_REPORTED = 10  # errors named in one answer; the first ones are enough to fix the request

BAD_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]|\r(?!\n)")


def text_problem(text: str) -> str | None:
    """Why `text` is refused, in plain words; None when it is fine."""
    match = BAD_CHARACTER.search(text)
    if match is None:
        return None
    character = match.group()
    if "\ud800" <= character <= "\udfff":
        return "This text holds an unpaired surrogate (\\ud800-\\udfff), which is not a character."
    if character == "\r":
        return "This text holds a carriage return without a line feed: use \\n or \\r\\n for line breaks."
    return (
        f"This text holds a control character (U+{ord(character):04X}), which is not allowed: "
        "only tabs and line breaks are."
    )


def bad_text(value: Any, root: str = "") -> list[tuple[str, str]]:
    """(path, problem) for each string or object key in JSON data whose text is refused, named by
    its path (`input.image_urls[2]`, `model`; the whole value: `root`); at most MAX_REPORTED."""
    found: list[tuple[str, str]] = []
    pending: list[tuple[Any, str]] = [(value, root)]
    while pending and len(found) < MAX_REPORTED:
        item, path = pending.pop()
        if isinstance(item, str):
            if problem := text_problem(item):
                found.append((path, problem))
        elif isinstance(item, dict):
            for key, element in reversed(item.items()):
                where = f"{path}.{key}" if path else str(key)
                pending += [(element, where), (key, where)]
        elif isinstance(item, list):
            pending += [(element, f"{path}[{index}]") for index, element in reversed(list(enumerate(item)))]
    return found


def nesting_depth(value: Any) -> int:
    """How deeply arrays and objects nest in JSON data (a scalar: 0), without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            elements = item.values() if isinstance(item, dict) else item
            pending.extend((element, depth + 1) for element in elements)
    return deepest


def max_text_chars(schema: dict) -> int:
    """The most characters a string under `schema` may hold: its `maxLength`, else
    PLAYGROUND_MAX_TEXT_CHARS."""
    given = schema.get("maxLength") if isinstance(schema, dict) else None
    if isinstance(given, int) and not isinstance(given, bool):
        return given
    return settings.PLAYGROUND_MAX_TEXT_CHARS


def repair_text(text: str) -> str:
    """`text` as it is shown and kept: a surrogate pair joined into its character, each refused
    code point U+FFFD, NUL dropped. Text that passes `text_problem` comes back unchanged."""
    if BAD_CHARACTER.search(text) is None:
        return text
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return BAD_CHARACTER.sub(lambda match: "" if match.group() == "\x00" else "\ufffd", joined)


def repair_strings(value: Any) -> Any:
    """JSON data with every string and key passed through `repair_text` (a new structure where
    something changed; the same objects where nothing did)."""
    if isinstance(value, str):
        return repair_text(value)
    if isinstance(value, list):
        items = [repair_strings(item) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, dict):
        pairs = [(repair_text(key), repair_strings(item)) for key, item in value.items()]
        same = all(k is key and v is item for (k, v), (key, item) in zip(pairs, value.items(), strict=True))
        return value if same else dict(pairs)
    return value
