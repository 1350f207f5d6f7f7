"""Code that runs one task through the API, for people to copy: curl (bash or sh), Python
(standard library only) and JavaScript (Node 18+ `fetch`).

Each snippet sends the exact input with the key from the environment (`PLAYGROUND_API_KEY`) and a
fresh Idempotency-Key, then polls the task about once a second until it has succeeded, failed or
been cancelled, and prints its output URLs (or its error). The key itself never appears in a page.
"""

import json

REPLAY_NOTE = "New key per run; re-sending with the same key replays the task instead of paying twice."
# How each snippet makes its Idempotency-Key: random, so each run is a new task.
NEW_IDEMPOTENCY_KEY = {
    "curl": "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n')",
    "python": "str(uuid.uuid4())",
    "javascript": "crypto.randomUUID()",
}


def api_snippets(base_url: str, model_slug: str, task_input: dict) -> dict[str, str]:
    """`{"curl": ..., "python": ..., "javascript": ...}`: programs that submit `task_input` to
    `model_slug` at `base_url` (e.g. `https://play.example.com`), wait for the task and print
    its output URLs. Give it the input with one's input files as signed URLs under `base_url`
    (`inputs.shared_input`), so the code stays small and runs anywhere (its submit keeps one's own
    input file as it is)."""
    base_url = base_url.rstrip("/")
    return {
        "curl": curl_snippet(base_url, model_slug, task_input),
        "python": python_snippet(base_url, model_slug, task_input),
        "javascript": javascript_snippet(base_url, model_slug, task_input),
    }


def shell_quote(text: str) -> str:
    """`text` as one single-quoted word for bash, sh (dash) and zsh."""
    return "'" + text.replace("'", "'\\''") + "'"


def curl_snippet(base_url: str, model_slug: str, task_input: dict) -> str:
    body = json.dumps({"model": model_slug, "input": task_input}, indent=2, ensure_ascii=False)
    # The body goes through printf (a shell builtin) on stdin rather than as an argument of curl:
    # an argument over 128 KB (a photo as a data URI) fails with "Argument list too long".
    # The API's JSON is one line of `"name": "value"` pairs, which sed and grep can pick from.
    return f"""\
# Run one playground task and print its output URLs (bash or sh, with curl).
: "${{PLAYGROUND_API_KEY:?export PLAYGROUND_API_KEY=<a key from the Keys page> first}}"
base={shell_quote(base_url)}
# {REPLAY_NOTE}
idempotency_key={NEW_IDEMPOTENCY_KEY["curl"]}
body={shell_quote(body)}
response=$(printf '%s' "$body" | curl -X POST "$base/api/v1/tasks" --silent --show-error \\
  -H "Authorization: Bearer $PLAYGROUND_API_KEY" \\
  -H "Content-Type: application/json" \\
  -H "Idempotency-Key: $idempotency_key" \\
  --data-binary @-)
task_id=$(printf '%s' "$response" | sed -n 's/.*"task_id": "\\([^"]*\\)".*/\\1/p')
if [ -n "$task_id" ]; then echo "task: $task_id"; else printf 'Not created: %s\\n' "$response" >&2; fi
while [ -n "$task_id" ]; do
  task=$(curl "$base/api/v1/tasks/$task_id" --silent --show-error \\
    -H "Authorization: Bearer $PLAYGROUND_API_KEY")
  state=$(printf '%s' "$task" | sed -n 's/.*"status": "\\([^"]*\\)".*/\\1/p')
  case $state in
    succeeded) printf '%s\\n' "$task" | grep -o '"url": "[^"]*"' | cut -d '"' -f 4; break ;;
    failed | cancelled | '') printf '%s: %s\\n' "${{state:-error}}" "$task" >&2; break ;;
  esac
  sleep 1
done
[ "$state" = succeeded ]  # the exit status: 0 only for a task that succeeded (no `exit`: pasted
                         # into a terminal, it would close it)
"""


def python_literal(value, indent: int = 0) -> str:
    """JSON data as Python source laid out like `json.dumps(indent=4)`, with True, False and None."""
    pad, inner = " " * indent, " " * (indent + 4)
    if isinstance(value, dict) and value:
        items = (f"{inner}{python_literal(k)}: {python_literal(v, indent + 4)}," for k, v in value.items())
        return "{\n" + "\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and value:
        items = (f"{inner}{python_literal(v, indent + 4)}," for v in value)
        return "[\n" + "\n".join(items) + f"\n{pad}]"
    if isinstance(value, bool) or value is None:
        return repr(value)
    # A JSON string, number or empty container is a Python literal too (its escapes are Python's).
    return json.dumps(value, ensure_ascii=False)


def python_snippet(base_url: str, model_slug: str, task_input: dict) -> str:
    return f'''\
"""Run one playground task and print its output URLs (Python 3, standard library only)."""

import json
import os
import time
import urllib.error
import urllib.request
import uuid

BASE_URL = {json.dumps(base_url)}
HEADERS = {{
    "Authorization": f"Bearer {{os.environ['PLAYGROUND_API_KEY']}}",
    "Content-Type": "application/json",
}}

task_input = {python_literal(task_input)}


def call(method, path, body=None, headers=None):
    request = urllib.request.Request(
        BASE_URL + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={{**HEADERS, **(headers or {{}})}},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        raise SystemExit(f"{{method}} {{path}}: {{error.code}} {{error.read().decode()}}") from None


# {REPLAY_NOTE}
idempotency_key = {NEW_IDEMPOTENCY_KEY["python"]}
task = call(
    "POST",
    "/api/v1/tasks",
    {{"model": {json.dumps(model_slug)}, "input": task_input}},
    {{"Idempotency-Key": idempotency_key}},
)
print("task:", task["task_id"])
while task["status"] not in ("succeeded", "failed", "cancelled"):
    time.sleep(1)
    task = call("GET", f"/api/v1/tasks/{{task['task_id']}}")
if task["status"] != "succeeded":
    raise SystemExit(f"{{task['status']}}: {{task['error']}}")
for files in task["output"].values():
    for file in files:
        print(file["url"])
'''


def javascript_snippet(base_url: str, model_slug: str, task_input: dict) -> str:
    # JSON is a JavaScript literal (since ES2019 even with U+2028 in a string).
    literal = json.dumps(task_input, indent=2, ensure_ascii=False)
    return f"""\
// Run one playground task and print its output URLs (Node 18+, no packages).
const crypto = require("node:crypto");

const BASE_URL = {json.dumps(base_url)};
const API_KEY = process.env.PLAYGROUND_API_KEY;

const input = {literal};

async function call(method, path, body, headers = {{}}) {{
  const response = await fetch(BASE_URL + path, {{
    method,
    headers: {{ Authorization: `Bearer ${{API_KEY}}`, "Content-Type": "application/json", ...headers }},
    body: body === undefined ? undefined : JSON.stringify(body),
  }});
  const data = await response.json();
  if (!response.ok) throw new Error(`${{method}} ${{path}}: ${{response.status}} ${{JSON.stringify(data)}}`);
  return data;
}}

async function main() {{
  if (!API_KEY) throw new Error("Set PLAYGROUND_API_KEY to a key from the Keys page first.");
  // {REPLAY_NOTE}
  const idempotencyKey = {NEW_IDEMPOTENCY_KEY["javascript"]};
  let task = await call(
    "POST",
    "/api/v1/tasks",
    {{ model: {json.dumps(model_slug)}, input }},
    {{ "Idempotency-Key": idempotencyKey }},
  );
  console.log(`task: ${{task.task_id}}`);
  while (!["succeeded", "failed", "cancelled"].includes(task.status)) {{
    await new Promise((resolve) => setTimeout(resolve, 1000));
    task = await call("GET", `/api/v1/tasks/${{task.task_id}}`);
  }}
  if (task.status !== "succeeded") throw new Error(`${{task.status}}: ${{JSON.stringify(task.error)}}`);
  for (const files of Object.values(task.output)) {{
    for (const file of files) console.log(file.url);
  }}
}}

main().catch((error) => {{
  console.error(error.message);
  process.exitCode = 1;
}});
"""
