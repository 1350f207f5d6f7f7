"""A person copies the code for a task from its page and runs it; the API reference reads on a phone."""

import os
import re
import subprocess
import sys

import pytest

from playground.catalog.models import CatalogEntry
from playground.generations.models import Task
from playground.keys.services import issue_key
from playground.web.snippets import api_snippets

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PROMPT = '月光下的竹林小径 — it\'s "quiet", $5 \\ `x`'


def copy(page, snippet_id: str) -> str:
    page.locator(f"button[data-copy='{snippet_id}']").click()
    return page.evaluate("navigator.clipboard.readText()")


def test_the_code_copied_from_a_task_page_runs_it_again(page, live_server, person, tmp_path):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/play/gemini-3-pro-image-preview-official")
    page.fill("textarea[name=prompt]", PROMPT)
    page.select_option("select[name=size]", "3:2")
    page.click("button.generate")
    page.wait_for_selector("#task-status .badge[data-status=succeeded]")
    first = Task.objects.get()
    page.get_by_role("link", name="Show as code").click()
    page.wait_for_url(re.compile(rf"/tasks/{first.pk}\?code#api$"))
    page.set_viewport_size({"width": 360, "height": 740})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "long code widens the page"

    key = issue_key(person, name="copied").secret
    env = {**os.environ, "PLAYGROUND_API_KEY": key}
    for snippet_id, command, suffix in (
        ("snippet-curl", "bash", ".sh"),
        ("snippet-python", sys.executable, ".py"),
    ):
        script = tmp_path / f"copied{suffix}"
        script.write_text(copy(page, snippet_id), encoding="utf-8")
        run = subprocess.run([command, str(script)], env=env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        task_id = re.search(r"^task: (task_\w+)$", run.stdout, re.M)[1]
        again = Task.objects.get(pk=task_id)
        assert (again.status, again.input) == ("succeeded", first.input)
        assert again.input["prompt"] == PROMPT
        assert f"/files/{task_id}/0.png?token=" in run.stdout
    assert Task.objects.count() == 3


def test_the_api_reference_fits_a_phone_and_copies_the_snippets_as_they_are(page, live_server):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.set_viewport_size({"width": 360, "height": 740})
    page.get_by_role("link", name="API", exact=True).click()
    page.wait_for_url("**/docs/api")
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    wide = page.evaluate(
        "[...document.querySelectorAll('main *')]"
        ".filter(e => !e.closest('pre') && e.getBoundingClientRect().right > 361)"
        ".map(e => e.tagName + ' ' + e.textContent.slice(0, 40))"
    )
    assert wide == [], "these stick out of a 360 px screen"
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    entry = CatalogEntry.objects.get(slug="wan2-7-r2v")
    snippets = api_snippets(live_server.url, entry.slug, entry.example_input)
    for language in snippets:
        assert copy(page, f"snippet-{entry.slug}-{language}") == snippets[language]
