"""CSV downloads that a spreadsheet opens as data, never as formulas.

Every CSV the playground writes goes through `csv_response`: a text cell that starts with `=`, `+`,
`-`, `@`, a tab or a carriage return (what Excel, LibreOffice and Google Sheets read as the start
of a formula) gets a leading apostrophe, so a key named `=HYPERLINK(...)` shows as that text.
Numbers are written as they are: only text is ever read as a formula. Excel in locales whose list
separator is `;` splits a cell at each `;`, so a formula start after one gets its apostrophe too.
"""

import csv
import re
from collections.abc import Iterable, Sequence

from django.http import HttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
AFTER_SEMICOLON = re.compile(r";(\s*)(?=[=+\-@])")


def neutralised(value: object) -> object:
    if not isinstance(value, str):
        return value
    value = AFTER_SEMICOLON.sub(r";\1'", value)
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_response(filename: str, rows: Iterable[Sequence[object]]) -> HttpResponse:
    """An attachment named `filename` holding `rows` (the header first), every cell neutralised."""
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    for row in rows:
        writer.writerow([neutralised(value) for value in row])
    return response
