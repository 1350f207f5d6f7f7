"""The public share page of a task and its files: the only views anyone reaches without an account.

Both look the share up by its token on every request (`sharing.shared_task`), so an unshared task's
page and files answer 404 at once; neither reads or creates a session, nor sets a CSRF cookie. The
page shows the outputs, the model's title and, if the owner chose so, the prompt and parameters
(never media inputs or any URL), and nothing of the owner, the cost or other tasks.
"""

import json

from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from playground.catalog.models import CatalogEntry
from playground.catalog.schema_forms import field_specs
from playground.generations.models import Share, Task
from playground.generations.sharing import share_file_url, share_url, shared_task
from playground.storage import serve_stored

# What a public page may be asked to show of one value, at most (a prompt is shown whole).
PARAMETER_VALUE_LIMIT = 200


def _output_items(task: Task) -> list[dict]:
    return list((task.output or {}).get(task.model.output_key, []))


def _file_name(item: dict) -> str:
    return item["file"].rsplit("/", 1)[-1]


def shown_parameters(entry: CatalogEntry, task_input: dict) -> tuple[str, list[dict]]:
    """The prompt and the other parameters a share page may show: plain values only. Media fields
    (uploads, URLs of input files) and anything that holds a URL stay private."""
    prompt_field = entry.roles.get("prompt")
    prompt = task_input.get(prompt_field) if prompt_field else None
    parameters = []
    for spec in field_specs(entry):
        if spec.name == prompt_field or spec.is_media or spec.kind == "object_list":
            continue
        if spec.name not in task_input:
            continue
        value = task_input[spec.name]
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        if "://" in text or "data:" in text:
            continue
        if len(text) > PARAMETER_VALUE_LIMIT:
            text = text[: PARAMETER_VALUE_LIMIT - 1] + "…"
        parameters.append({"label": spec.label, "value": text})
    return (prompt if isinstance(prompt, str) else ""), parameters


def _public(response: HttpResponse) -> HttpResponse:
    """Anyone may see it, nobody may keep it past an unshare, and no search engine lists it."""
    response["Cache-Control"] = "no-cache"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _share_or_404(token: str) -> Share:
    share = shared_task(token)
    if share is None:
        raise Http404("No such page.")
    return share


@require_GET
def share_page(request: HttpRequest, token: str) -> HttpResponse:
    share = _share_or_404(token)
    task, entry = share.task, share.task.model
    outputs = [
        {
            "url": share_file_url(request, share, _file_name(item)),
            "name": _file_name(item),
            **{k: item.get(k) for k in ("width", "height", "duration", "content_type")},
        }
        for item in _output_items(task)
    ]
    prompt, parameters = shown_parameters(entry, task.input) if share.show_parameters else ("", [])
    preview = {**outputs[0], "kind": entry.kind} if outputs else None
    description = prompt[:200] if prompt else f"A result made with {entry.title}."
    context = {
        "task": task,
        "entry": entry,
        "outputs": outputs,
        "preview": preview,
        "show_parameters": share.show_parameters,
        "prompt": prompt,
        "parameters": parameters,
        "description": description,
        "page_url": share_url(request, share),
    }
    return _public(render(request, "web/share.html", context))


@require_GET
def share_file(request: HttpRequest, token: str, name: str) -> HttpResponse:
    """An output file of a shared task, for anyone with the page, while it is shared."""
    share = _share_or_404(token)
    item = next((i for i in _output_items(share.task) if _file_name(i) == name), None)
    if item is None or not default_storage.exists(item["file"]):
        raise Http404("No such file.")
    return _public(serve_stored(item["file"], item["content_type"], name, cache=None, presign=False))
