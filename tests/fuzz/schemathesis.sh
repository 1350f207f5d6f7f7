#!/usr/bin/env bash
# `make schemathesis`: fuzz /api/v1 with schemathesis against a live gunicorn on 127.0.0.1.
#
# A fresh SQLite database in a temporary folder, the catalog, a user `fuzz` with one finished task
# (so listed tasks carry real outputs) and an issued key. No task worker runs, so nothing a fuzzed
# request asks for (hosted inputs, webhooks) is ever fetched or sent, and the server resolves no
# names (tests/fuzz/offline_wsgi.py). Every request schemathesis made is checked afterwards to have
# gone to 127.0.0.1. SCHEMATHESIS_MAX_EXAMPLES (default 50) sets the depth; extra arguments go to
# `schemathesis run` (e.g. `--seed N` to replay a run).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PYTHON=$ROOT/.venv/bin/python

data=$(mktemp -d "${TMPDIR:-/tmp}/playground-schemathesis.XXXXXX")
server=""
status=1
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true; fi
  if [ "$status" -eq 0 ]; then
    rm -rf "$data"
  else
    echo "Kept for a look: $data (server.log, requests.har, the database)" >&2
  fi
}
trap cleanup EXIT

# Nothing from a developer's .env or shell (a PostgreSQL DATABASE_URL, the mindvideo engine) applies.
export PLAYGROUND_ENV_FILE="$data/none.env"
export DATABASE_URL="sqlite:///$data/fuzz.sqlite3"
export PLAYGROUND_DATA_DIR="$data" PLAYGROUND_MEDIA_ROOT="$data/media"
export PLAYGROUND_ENGINE=local PLAYGROUND_TASK_BACKEND=django_tasks_db.DatabaseBackend
export SECRET_KEY="schemathesis-$(date +%s)-$RANDOM$RANDOM$RANDOM" DEBUG=false
export ALLOWED_HOSTS=127.0.0.1 PLAYGROUND_FETCH_ALLOWED_HOSTS="" LOG_LEVEL=WARNING
# One key makes every request; its rate limit (600 a minute, counted across the server's processes)
# would answer the end of a run 429. The limiter still runs; only its ceiling is out of reach.
export PLAYGROUND_API_RATE_LIMIT=100000000/60

"$PYTHON" manage.py migrate --no-input -v 0
"$PYTHON" manage.py load_catalog >/dev/null
PLAYGROUND_TASK_BACKEND=django.tasks.backends.immediate.ImmediateBackend "$PYTHON" manage.py shell -v 0 -c '
from django.contrib.auth import get_user_model
from playground.generations.services import submit_task
user = get_user_model().objects.create_user("fuzz", password="fuzz-password-1")
input = {"prompt": "a finished task", "size": "16:9", "resolution": "1K", "n": 2}
task = submit_task(user, "gemini-3-pro-image-preview-official", input, request_id="req_seeded").task
task.refresh_from_db()
assert task.status == "succeeded", task.error
'
key=$("$PYTHON" manage.py issue_key fuzz --name schemathesis)

port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
"$PYTHON" -m gunicorn tests.fuzz.offline_wsgi --bind "127.0.0.1:$port" --workers 2 --threads 4 \
  --log-level warning >"$data/server.log" 2>&1 &
server=$!

# Its caches go to the temporary folder, not the work tree.
status=0
(cd "$data" && "$ROOT/.venv/bin/schemathesis" run "$base/api/v1/openapi.json" --url "$base" \
  --header "Authorization: Bearer $key" \
  --checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-50}" --max-redirects 0 --request-timeout 30 \
  --wait-for-schema 30 --generation-database none \
  --report har --report-har-path "$data/requests.har" "$@") || status=$?

if [ -f "$data/requests.har" ]; then
  "$PYTHON" - "$data/requests.har" "$base/" <<'PY' || status=1
import json, sys
entries = json.load(open(sys.argv[1]))["log"]["entries"]
elsewhere = {e["request"]["url"] for e in entries if not e["request"]["url"].startswith(sys.argv[2])}
assert not elsewhere, f"schemathesis sent requests elsewhere: {sorted(elsewhere)[:5]}"
print(f"{len(entries)} requests, all to {sys.argv[2]}")
PY
elif [ "$status" -eq 0 ]; then
  echo "schemathesis wrote no requests.har: cannot tell where its requests went" >&2
  status=1
fi
if grep -q "Traceback" "$data/server.log"; then
  echo "The server logged errors:" >&2
  cat "$data/server.log" >&2
  status=1
fi
exit "$status"
