"""Template source rules that Django does not enforce itself."""

import re
from pathlib import Path

from django.conf import settings

UNCLOSED_COMMENT = re.compile(r"\{#(?![^\n]*#\})")


def template_files() -> list[Path]:
    roots = [Path(directory) for directory in settings.TEMPLATES[0]["DIRS"]]
    return sorted(path for root in roots for path in root.rglob("*.html"))


def test_no_template_comment_spans_lines_and_so_shows_on_the_page():
    """`{# … #}` is a one-line comment: one that spans lines is printed as text (it once put its
    words beside the model picker and squeezed the picker to a bare arrow). Longer ones use
    {% comment %}."""
    files = template_files()
    assert files
    shown = [
        f"{path.name}:{text[: match.start()].count(chr(10)) + 1}"
        for path in files
        for text in [path.read_text()]
        for match in UNCLOSED_COMMENT.finditer(text)
    ]
    assert shown == []


def test_the_playground_page_shows_no_template_syntax(client, user, catalog):
    client.force_login(user)
    html = client.get("/", follow=True).content.decode()
    assert "model-select" in html
    assert "{#" not in html and "#}" not in html and "{%" not in html
