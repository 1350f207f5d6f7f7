"""Where one poll's time goes: the API poll (plain and conditional) and the status panel's
conditional poll, run in this process through Django's WSGI handler with the production settings.

    .venv/bin/python -m benchmarks.profile_poll [--requests 2000]

For each request it prints the wall time per request (no profiler running), then splits that time
over the parts of the request (cProfile's cumulative time of each part, as a share of the
profiled request, times the unprofiled wall time): the middleware around the view, URL
resolution, the session, the API key and its rate count, reading the task, the ETag and 304,
rendering the body, and the rest of the view. Parts that the code does not have (an older
commit) show 0. The numbers leave out gunicorn's own work, which `benchmarks.poll` includes.
"""

import argparse
import cProfile
import io
import pstats
import time

from . import harness

# (label, [(path ending, function name), ...]): each part's time is the sum of its functions'
# cumulative times; the functions of one part never call each other.
PARTS = [
    ("URL resolution", [("urls/resolvers.py", "resolve")]),
    ("session (load and decode)", [("sessions/backends/db.py", "load")]),
    ("API key and rate count", [("access/callers.py", "key_caller")]),
    ("task read (stamp or ORM)", [("presenters.py", "task_stamp"), ("api/views.py", "owned_task")]),
    ("ETag and 304", [("presenters.py", "stamp_etag"), ("presenters.py", "not_modified")]),
    ("rendering the body", [("presenters.py", "task_body")]),
]
VIEW = [("handlers/base.py", "_get_response"), ("api/middleware.py", "api_view")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per measurement")
    args = parser.parse_args()
    harness.configure()
    from django.core.handlers.wsgi import WSGIHandler

    from .poll import running_task

    user, key, session = harness.make_account()
    task_id = running_task(user)
    app = WSGIHandler()
    api = {"Authorization": f"Bearer {key}"}
    panel = {"Cookie": f"sessionid={session}", "HX-Request": "true"}
    api_etag = call(app, f"/api/v1/tasks/{task_id}", api)[1]
    panel_etag = call(app, f"/tasks/{task_id}", panel)[1]
    cases = [
        ("API 200", f"/api/v1/tasks/{task_id}", api),
        ("API 304", f"/api/v1/tasks/{task_id}", {**api, "If-None-Match": api_etag}),
        ("panel 304", f"/tasks/{task_id}", {**panel, "If-None-Match": panel_etag}),
    ]
    rows = []
    for label, path, headers in cases:
        status = {call(app, path, headers)[0] for _ in range(300)}  # warm up
        assert len(status) == 1, (label, status)
        started = time.perf_counter()
        for _ in range(args.requests):
            call(app, path, headers)
        wall = (time.perf_counter() - started) / args.requests * 1000
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.requests):
            call(app, path, headers)
        profile.disable()
        stats = pstats.Stats(profile).stats
        total = cumulative(stats, [("handlers/wsgi.py", "__call__")])
        view = cumulative(stats, VIEW)
        parts = {name: cumulative(stats, functions) for name, functions in PARTS}
        scale = wall / total
        row = [f"{label} ({status.pop()})", f"{wall:.3f}", f"{(total - view) * scale:.3f}"]
        row += [f"{parts[name] * scale:.3f}" for name, _ in PARTS]
        row.append(f"{max(0.0, view - sum(parts.values())) * scale:.3f}")  # shares round
        rows.append(row)
    header = ["request", "ms/request", "handler and middleware", *(name for name, _ in PARTS)]
    header.append("rest of the view")
    print(f"\nOne poll in process, ms/request ({args.requests} requests; cProfile's shares of the wall time)")
    print(harness.table(rows, header))


def cumulative(stats: dict, functions: list[tuple[str, str]]) -> float:
    """Cumulative seconds of the named functions (per call site summed, recursion counted once)."""
    return sum(
        timing[3]
        for (filename, _, name), timing in stats.items()
        if any(filename.endswith(path) and name == function for path, function in functions)
    )


def call(app, path: str, headers: dict[str, str]) -> tuple[str, str | None]:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": harness.HOST,
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": harness.HOST,
        "HTTP_HOST": harness.HOST,
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
    }
    environ.update({"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()})
    answer = {}

    def start_response(status, response_headers, exc_info=None):
        answer.update(status=status.split()[0], etag=dict(response_headers).get("ETag"))

    b"".join(app(environ, start_response))
    return answer["status"], answer["etag"]


if __name__ == "__main__":
    main()
