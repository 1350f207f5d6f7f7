"""Round 3 of attacks on hostile input and hostile users: each test here failed on the code it was
written against (a real finding); its docstring says what should hold, what went wrong, and how to
reproduce it."""

import csv
import io
import json
import re
import socket
import time
import tracemalloc

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from playground.access.models import SignInFailure
from playground.access.passes import create_pass, pass_token
from playground.access.ratelimit import Limit, over_limit
from playground.engines.fetch import FetchError, check_url
from playground.generations.models import InputFile
from playground.keys.services import issue_key

from ..helpers import SEED, Api, data_uri, enter_demo, seed_input, solid_png

# --- Input files: the task page signs whatever reference a task's input holds -------------------------


def test_the_task_page_does_not_sign_someone_elses_input_file_named_in_a_prompt(
    api, other_api, other_user, client
):
    """What holds: someone else's input file is read only with a signed token; knowing its plain
    URL (`/inputs/in_…/photo.png`, which tasks keep unsigned) is not enough
    (test_input_files.test_someone_elses_input_cannot_be_borrowed_by_its_url).

    What went wrong: the plain URL is refused only in a *media* field. Put in the prompt, the submit
    is accepted, and the submitter's own task page builds copy-as-code with `shared_input`, which
    signs every reference anywhere in the input, whoever owns the file. The page hands Bob a
    signed link to Alice's private photo, and that link serves it. (Demo guests get the same from
    the re-run form, `web.views.form_input`.)

    Reproduce: Alice submits a data URI (stored as an input file). Bob submits a task whose prompt
    is that file's plain URL, opens his task page, takes the `?token=` URL and GETs it: 200,
    Alice's bytes."""
    content = solid_png(size=(64, 64))
    assert api.submit(image_urls=[data_uri(content)]).status_code == 201
    row = InputFile.objects.get()
    plain = f"http://testserver/inputs/{row.pk}/{row.name}"

    response = other_api.submit(prompt=plain)
    assert response.status_code == 201, response.json()
    task_id = response.json()["task_id"]

    client.force_login(other_user)
    page = client.get(reverse("task", args=[task_id])).content.decode()
    signed = re.findall(rf"/inputs/{row.pk}/{re.escape(row.name)}\?token=[^\"\'\s&<\\]+", page)
    leaked = [url for url in signed if client.get(url).status_code == 200]
    assert not leaked, f"Bob's own task page signed Alice's input file: {leaked[0]}"


# --- Sign-in: the throttle writes the raw username before the form has refused it --------------------


def test_a_sign_in_username_holding_a_nul_is_refused_by_the_form_not_written_down(user):
    """What holds: a sign-in with a username no form accepts (Django's CharField refuses NUL) is a
    form error, never a 500, and the throttle records what it counts in plain text.

    What went wrong: `ThrottledSignIn.clean` hands `self.data["username"]` (the raw POST value) to
    `admit_sign_in`, which INSERTs a SignInFailure with it before anything refused the NUL. On
    PostgreSQL that INSERT raises DataError ("PostgreSQL text fields cannot contain NUL"): our
    sign-in page and Django admin's both answer 500 to one crafted POST (anyone, unauthenticated;
    the 500 is also logged with a traceback). On SQLite the row is stored with the NUL.

    Reproduce: POST /accounts/login/ (or /admin/login/) with username "alice\x00" and any
    password, on DATABASE_URL=postgres://… : 500."""
    browser = Client(raise_request_exception=False)
    response = browser.post(reverse("login"), {"username": "alice\x00", "password": "guess"})
    assert response.status_code == 200, f"sign-in answered {response.status_code}"
    # (checked in Python: SQLite's LIKE ends its pattern at a NUL, so `__contains` matches all)
    assert [name for name in SignInFailure.objects.values_list("username", flat=True)] == ["alice"]


# --- Rate counters: a late hit of the previous window resets the count ------------------------------


@pytest.mark.django_db
def test_a_late_hit_from_the_previous_window_does_not_reset_a_full_counter():
    """What holds: a rate limit holds across processes and hosts (DESIGN, Limits); once a scope
    is over its limit in a window, it stays refused until that window ends.

    What went wrong: `count_in_database` resets the row for *any* other window
    (`.exclude(window=window).update(window=window, hits=1)`), older ones included. A hit that
    computed its window just before the boundary but reaches the UPDATE after another hit moved the
    row on (a thread descheduled for a moment, or a second host whose clock is a second behind)
    puts the row back to the old window with hits=1, and the next current-window hit resets it
    again to hits=1. Around every boundary (for the whole skew, with hosts out of step) each
    alternation resets the count, so a flood is never refused.

    Reproduce: five hits at t fill Limit(5, 60) and the sixth is refused; one hit at t-1 (the
    previous window); then five more at t+1 all pass."""
    limit = Limit(5, 60)
    now = (time.time() // 60) * 60 + 0.5  # half a second into the current window
    for _ in range(5):
        assert over_limit("attack:skew", limit, now=now) is None
    assert over_limit("attack:skew", limit, now=now) is not None
    over_limit("attack:skew", limit, now=now - 1)  # late: the previous window
    passed = sum(over_limit("attack:skew", limit, now=now + 1) is None for _ in range(5))
    assert passed == 0, f"{passed} hits passed a full limit after one late hit reset its counter"


# --- Bounded work: WebP (and GIF, BMP) are decoded in full at submit ---------------------------------


def test_a_2kb_webp_of_49_megapixels_is_checked_without_holding_its_pixels(api, queue_only):
    """What holds (README, input files): "A submit's memory stays about the size of its body ...
    images are checked without holding their pixels".

    What went wrong: `media.check_image` reads only a JPEG reduced and only a PNG's chunks; every
    other accepted format (WEBP, GIF, BMP) goes through `image.load()`, a full decode. A lossless
    WebP of 7000x7000 in one colour is 1.9 KB, under every byte limit and at the pixel cap, and
    its check allocates ~196 MB in the web process (Pillow's WebP decoder hands back the frame
    as one bytes object; GIF and BMP decode into Pillow's own memory, which tracemalloc does not
    even see). Three such images fit the task cap, and every gunicorn thread can hold them at once.

    Reproduce: POST /api/v1/tasks with image_urls=[data:image/webp;base64,<1.9 KB>] and watch the
    process: its peak grows by ~200 MB for a 3 KB body."""
    buffer = io.BytesIO()
    Image.new("RGBA", (7000, 7000), (10, 20, 30, 255)).save(buffer, "WEBP", lossless=True)
    webp = data_uri(buffer.getvalue(), "image/webp")
    body = json.dumps({"model": SEED, "input": seed_input(image_urls=[webp])})
    assert len(body) < 4096
    api.submit(
        image_urls=[data_uri(solid_png(size=(64, 64)), "image/png")]
    )  # warm up imports and URL patterns
    tracemalloc.start()
    try:
        response = api.post("/api/v1/tasks", raw=body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 201, response.json()
    assert peak < 32 * 1024 * 1024, f"a {len(body)} byte submit held {peak / 1e6:.0f} MB"


# --- Fetching URLs: one spelling, two hosts --------------------------------------------------------


def test_check_url_resolves_the_host_a_browser_style_parser_reads_for_a_deviation_character():
    """What holds (engines/fetch.py): "the URL we check must be the URL the platform reads" —
    hosted inputs are checked here and passed on to the MindVideo platform as written.

    What went wrong: a non-ASCII host is converted with Python's `idna` codec (IDNA 2003), which
    maps the deviation characters ß and ς (to "ss" and U+03C3). A WHATWG parser (browsers, Node,
    the `idna` package httpx uses, UTS 46 non-transitional) keeps them: `faß.example` is
    `xn--fa-hia.example` there, but we resolve and check `fass.example`, another domain with its
    own owner and DNS. Whoever owns `xn--fa-hia.…` points it at a private address; we check the
    unrelated public `fass.…` and pass the URL on.

    Reproduce: check_url("https://faß.example/a.png", resolver=recorder) asks DNS for
    "fass.example", not "xn--fa-hia.example"."""
    asked = []

    def resolver(host, port, **kwargs):
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    try:
        check_url("https://faß.example/a.png", resolver=resolver)
    except FetchError:
        return  # refusing the spelling outright is a fix too
    assert asked == ["xn--fa-hia.example"], f"checked {asked}, but the platform fetches xn--fa-hia.example"


@pytest.mark.parametrize(
    "url", ["http://[fec0::1]/a.png", "http://[fec0:0:0:1::5]/a.png", "http://[feff:ffff::1]/a.png"]
)
def test_ipv6_site_local_addresses_are_refused_like_private_ones(url):
    """What holds (engines/fetch.py): private and non-public addresses are refused in every
    spelling.

    What went wrong: fec0::/10 (IPv6 site-local, RFC 3879: deprecated but still routed inside
    the networks that used it, the IPv6 counterpart of 10/8) passes `refusal_reason`: Python's
    `is_private` and `is_global` do not cover it (only `is_site_local` does), so a literal or a
    name resolving to it is fetched from.

    Reproduce: check_url("http://[fec0::1]/a.png") returns a Destination instead of raising
    forbidden_address."""
    with pytest.raises(FetchError) as refused:
        check_url(url)
    assert refused.value.code == "forbidden_address"


# --- CSV: a formula after the separator of a semicolon locale ---------------------------------------


def test_usage_csv_cannot_carry_a_formula_to_a_spreadsheet_that_splits_on_semicolons(
    client, user, catalog, queue_only, django_capture_on_commit_callbacks
):
    """What holds (web/csv_export.py): every CSV opens in a spreadsheet as data, never formulas.

    What went wrong: only a cell's first character is neutralised, and cells are quoted only when
    they hold a comma. Excel in the many locales whose list separator is `;` (de, fr, nl, ...)
    splits a double-clicked .csv on `;`: a key named `x;=1+2` (or `x;=WEBSERVICE(…)`,
    `x;=HYPERLINK(A1)`) is written bare, `key,x;=1+2 (pg_live_…),1,0,…`, and its second column
    there starts with `=`. (Quoting only at the start of a field does not help either: a field
    with `"` in it is quoted, but the `;`-split field begins before the quote.)

    Reproduce: name a key as above, submit one task with it, download /usage.csv, and read it with
    `;` as the separator: a cell starts with `=`."""
    name = "x;=1+2"
    issued = issue_key(user, name=name)
    assert Api(client, issued.secret, django_capture_on_commit_callbacks).submit().status_code == 201
    client.force_login(user)
    content = client.get(reverse("usage-csv")).content.decode()
    cells = [cell for row in csv.reader(io.StringIO(content), delimiter=";") for cell in row]
    formulas = [cell for cell in cells if cell[:1] in ("=", "+", "-", "@")]
    assert not formulas, f"read with `;` as the separator, cells start formulas: {formulas}"


# --- Demo landing: entering a pass keeps the session key ---------------------------------------------


def test_entering_a_demo_pass_gives_the_session_a_new_key(user, other_user, catalog):
    """What holds: a change of who a session is (signing in, becoming a guest) gets a new session
    key, so a session id known before (planted by a sibling subdomain, an http:// hop, a shared
    machine) does not become the new identity. Django's `login()` cycles it; signing in does.

    What went wrong: `demo_entry` (POST) writes the pass and a new guest id into the existing
    session without `request.session.cycle_key()`. Whoever holds that session id is now the same
    guest: they see the guest's tasks, uploads and results, and spend the pass.

    Reproduce: hold a session (enter pass A), note its sessionid cookie; press Enter on pass B's
    landing page with it; the cookie's value is unchanged and now names B's guest."""
    first = create_pass(user, "A", [SEED], 5, 2)
    second = create_pass(other_user, "B", [SEED], 5, 2)
    browser = Client(enforce_csrf_checks=True)
    enter_demo(browser, reverse("demo", args=[pass_token(first)]))
    before = browser.session.session_key
    enter_demo(browser, reverse("demo", args=[pass_token(second)]))
    assert browser.session.session_key != before, "entering pass B kept the session id from before"
