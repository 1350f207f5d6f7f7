"""CSV downloads that a spreadsheet opens as data, never as formulas.

Every CSV the playground writes goes through `csv_response`: a text cell that starts with `=`, `+`,
`-`, `@`, a tab or a carriage return (what Excel, LibreOffice and Google Sheets read as the start
of a formula) gets a leading apostrophe, so a key named `=HYPERLINK(...)` shows as that text.
Numbers are written as they are: only text is ever read as a formula.
"""

import csv
from collections.abc import Iterable, Sequence

from django.http import HttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralised(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_response(filename: str, rows: Iterable[Sequence[object]]) -> HttpResponse:
    """An attachment named `filename` holding `rows` (the header first), every cell neutralised."""
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    for row in rows:
        writer.writerow([neutralised(value) for value in row])
    return response
