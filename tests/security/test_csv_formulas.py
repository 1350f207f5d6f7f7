"""Every CSV neutralises cells a spreadsheet would read as a formula (issue 13, item 6): the
finding was `usage.csv` writing a key named `=...` as a formula."""

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from playground.keys.services import issue_key
from playground.web.csv_export import neutralised

from ..helpers import Api

FORMULA_NAMES = ["=1+1", '=HYPERLINK("http://x.example/","y")', "+1", "-1", "@SUM(1)", "\tx", "\rx"]


def test_a_key_named_like_a_formula_is_text_in_usage_csv(
    client, user, catalog, queue_only, django_capture_on_commit_callbacks
):
    for name in FORMULA_NAMES:
        issued = issue_key(user, name=name)
        assert Api(client, issued.secret, django_capture_on_commit_callbacks).submit().status_code == 201
    client.force_login(user)
    rows = list(csv.reader(io.StringIO(client.get(reverse("usage-csv")).content.decode())))
    labels = [row[1] for row in rows if row[0] == "key"]
    assert len(labels) == len(FORMULA_NAMES)
    assert all(label.startswith("'") for label in labels), labels
    assert any(label.startswith("'=HYPERLINK(") for label in labels)
    # numbers stay numbers
    assert all(Decimal(row[4]) >= 0 for row in rows[1:])


@pytest.mark.parametrize("value", FORMULA_NAMES)
def test_text_starting_a_formula_gets_a_leading_apostrophe(value):
    assert neutralised(value) == "'" + value


@pytest.mark.parametrize("value", ["plain", "a=b", "", 5, Decimal("-1.5"), "'quoted"])
def test_other_cells_and_numbers_are_written_as_they_are(value):
    assert neutralised(value) == value
