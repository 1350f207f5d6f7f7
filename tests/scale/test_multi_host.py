"""Two web hosts and two worker hosts sharing only PostgreSQL and a bucket, and faults of both.

One cluster (tests/scale/cluster.py) serves the module: the journeys run in order, the database
restart last. Each host has its own empty data folder, so a file one host wrote and another host
served can only have gone through the bucket.
"""

import base64
import io
import re
import time
import zipfile
from collections import Counter
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from ..helpers import data_uri, solid_png
from .cluster import Cluster, Postgres, wait_until

LEASE, ENGINE_DELAY = 8, 0.5
SETTINGS = {
    "PLAYGROUND_TASK_LEASE": str(LEASE),
    "PLAYGROUND_TASK_HEARTBEAT": "2",
    "PLAYGROUND_LOCAL_ENGINE_DELAY": str(ENGINE_DELAY),  # tasks are still running a moment later
    "PLAYGROUND_STORAGE_SAVE_RETRIES": "2",  # a refused save is tried after 1 s and 2 s more
}
REFERENCE = data_uri(solid_png(size=(64, 64)))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, scale_database_url):
    cluster = Cluster(
        tmp_path_factory.mktemp("hosts"), Postgres(scale_database_url), settings=SETTINGS, presigned_webs=(1,)
    )
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def on_host(url: str, web) -> str:
    """`url` (a file URL one web host gave out) as served by another web host."""
    return urlunsplit(urlsplit(url)._replace(netloc=f"127.0.0.1:{web.port}"))


def read_through(cluster, web, url: str, *, key: bool = False) -> bytes:
    """The file at `url` as a client of `web` gets it (with the API key, or by the URL's token):
    streamed by the host, or (a presigned host) by the bucket the host redirects to."""
    headers = {"Authorization": f"Bearer {cluster.key}"} if key else {}
    response = httpx.get(on_host(url, web), headers=headers, timeout=30)
    if web.port == cluster.web_hosts[1].port:
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        assert location.startswith(f"http://127.0.0.1:{cluster.link.port}/"), location
        assert "X-Amz-Signature=" in location and "X-Amz-Expires=3600" in location
        response = httpx.get(location, timeout=30)
    assert response.status_code == 200, response.text[:300]
    return response.content


def wait_ended(cluster, task_ids, timeout) -> dict[str, dict]:
    ended = {}
    assert wait_until(lambda: ended.update(cluster.ended(task_ids)) or ended, timeout, interval=0.5), (
        "tasks never ended",
        cluster.database.query(
            "SELECT id, status, attempts FROM generations_task WHERE status IN ('queued', 'processing')"
        ),
    )
    return ended


def statuses(cluster, task_ids) -> Counter:
    return Counter(
        row[0]
        for row in cluster.database.query(
            "SELECT status FROM generations_task WHERE id = ANY(%s)", list(task_ids)
        )
    )


def test_tasks_sent_to_either_web_host_run_on_either_worker_and_every_file_reads_through_either(cluster):
    web_a, web_b = cluster.web_hosts
    task_ids = [cluster.submit(web, prompt=f"host {n}") for n, web in enumerate([web_a, web_b] * 5)]
    with_input = cluster.submit(web_b, image_urls=[REFERENCE], prompt="from a reference")
    ended = wait_ended(cluster, [*task_ids, with_input], timeout=90)
    assert Counter(body["status"] for body in ended.values()) == {"succeeded": 11}

    # Both workers took tasks sent to both web hosts.
    ran_by = dict(
        cluster.database.query(
            "SELECT args_kwargs->'args'->>0, worker_ids->>0 FROM django_tasks_database_dbtaskresult"
        )
    )
    assert set(ran_by.values()) == {"worker-1", "worker-2"}, ran_by

    # Every output, and the input file, reads the same through either web host (web-2 redirects to
    # the bucket's presigned URL), and with the key instead of the URL's token too.
    for body in ended.values():
        for image in body["output"]["images"]:
            through_a, through_b = (read_through(cluster, web, image["url"]) for web in (web_a, web_b))
            assert through_a == through_b and through_a.startswith(b"\x89PNG")
            unsigned = image["url"].split("?")[0]
            assert read_through(cluster, web_a, unsigned, key=True) == through_a
    # The reference image web-2 stored at submit, as the task keeps it (a URL without a token).
    [(input_url,)] = cluster.database.query(
        "SELECT input->'image_urls'->>0 FROM generations_task WHERE id = %s", with_input
    )
    assert re.search(r"/inputs/in_[0-9a-f]+/", input_url), input_url
    through_a, through_b = (read_through(cluster, web, input_url, key=True) for web in (web_a, web_b))
    assert through_a == through_b == base64.b64decode(REFERENCE.split(",")[1])

    # "Download all" on web-1 of a task web-2 took and a worker saved: the zip streams from the bucket.
    browser = cluster.signed_in(web_a)
    archive = browser.get(f"/tasks/{task_ids[1]}/download.zip")
    assert archive.status_code == 200, archive.text[:300]
    with zipfile.ZipFile(io.BytesIO(archive.content)) as zipped:
        [name] = zipped.namelist()
        assert zipped.read(name) == read_through(
            cluster, web_a, ended[task_ids[1]]["output"]["images"][0]["url"]
        )
    # The presigned host's pages let images and videos load from the bucket they redirect to.
    browser = cluster.signed_in(web_b)
    policy = browser.get(f"/tasks/{task_ids[0]}").headers["content-security-policy"]
    assert f"img-src 'self' data: blob: http://127.0.0.1:{cluster.link.port}" in policy, policy

    # Nothing was written to any host's own folder: the files are in the bucket, each once.
    assert cluster.local_files() == []
    outputs = cluster.bucket_keys("outputs/")
    assert len(outputs) == 11 and len(cluster.bucket_keys("inputs/")) == 1


def test_a_bucket_cut_mid_save_fails_the_task_clearly_and_a_short_cut_is_ridden_out(cluster):
    web_a, web_b = cluster.web_hosts
    done = wait_ended(cluster, [cluster.submit(web_a)], timeout=30)
    file_url = next(iter(done.values()))["output"]["images"][0]["url"]

    cluster.link.cut()
    try:
        # While the bucket is unreachable, a file request is a 503 saying so, not a 500 or a 404.
        refused = httpx.get(on_host(file_url, web_a), timeout=30)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
        assert "file store is not answering" in refused.text
        # Tasks still run to the save, which is tried three times, then fails the task saying why.
        lost = [cluster.submit(web_a), cluster.submit(web_b)]
        ended = wait_ended(cluster, lost, timeout=60)
    finally:
        cluster.link.restore()
    for body in ended.values():
        assert body["status"] == "failed" and body["output"] is None, body
        assert body["error"]["code"] == "storage_unavailable"
        assert body["error"]["message"].startswith(
            "The output 0.png could not be saved: the file store did not"
        )
        assert body["cost_actual"] == 0
    assert not any(cluster.bucket_keys(f"outputs/{task_id}/") for task_id in lost)

    # A cut shorter than the retries: the task succeeds, its file in the bucket.
    tries = sum(worker.log.read_text().count("could not save") for worker in cluster.worker_hosts)
    cluster.link.cut()
    try:
        ridden_out = cluster.submit(web_b)
        assert wait_until(
            lambda: sum(w.log.read_text().count("could not save") for w in cluster.worker_hosts) > tries, 30
        ), "the save was never refused"
    finally:
        cluster.link.restore()
    body = wait_ended(cluster, [ridden_out], timeout=30)[ridden_out]
    assert body["status"] == "succeeded", body
    assert read_through(cluster, web_a, body["output"]["images"][0]["url"]).startswith(b"\x89PNG")


def test_postgres_restarted_with_twenty_tasks_in_flight_every_task_ends_once(cluster):
    web_a, web_b = cluster.web_hosts
    task_ids = [cluster.submit(web, prompt=f"in flight {n}") for n, web in enumerate([web_a, web_b] * 10)]
    assert wait_until(lambda: statuses(cluster, task_ids)["processing"] == 2, 30), statuses(cluster, task_ids)
    browsers = [cluster.signed_in(web) for web in (web_a, web_b)]

    cluster.database.stop()
    stopped_at = time.monotonic()
    try:
        # While it is down both web hosts answer 503 with a clear error, the API in its JSON shape.
        for web, browser in zip((web_a, web_b), browsers, strict=True):
            with cluster.api(web) as client:
                response = client.get(f"/api/v1/tasks/{task_ids[0]}")
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "5"
            error = response.json()["error"]
            assert error["code"] == "database_unavailable"
            assert error["message"].startswith("The database is not answering")
            page = browser.get("/history")
            assert page.status_code == 503 and "Back in a moment" in page.text
            poll = browser.get(f"/tasks/{task_ids[0]}", headers={"HX-Request": "true"})
            assert poll.status_code == 503 and poll.text.startswith('<div class="alert" role="alert"')
        time.sleep(max(0.0, 3 - (time.monotonic() - stopped_at)))
    finally:
        cluster.database.start()

    # Every task ends within a lease and a reaper interval after the work it had left.
    ended = wait_ended(cluster, task_ids, timeout=20 * ENGINE_DELAY + LEASE + 1 + 30)
    for body in ended.values():
        assert body["status"] in ("succeeded", "failed"), body
        if body["status"] == "failed":
            assert body["error"]["message"], body
    # None twice: each ended once (one end in its events), and left only its own outputs.
    ends = Counter(
        task_id
        for (task_id,) in cluster.database.query(
            "SELECT task_id FROM generations_taskevent WHERE kind = 'status'"
            " AND status IN ('succeeded', 'failed', 'cancelled') AND task_id = ANY(%s)",
            task_ids,
        )
    )
    assert ends == Counter(task_ids)
    for task_id, body in ended.items():
        stored = cluster.bucket_keys(f"outputs/{task_id}/")
        expected = len(body["output"]["images"]) if body["status"] == "succeeded" else 0
        assert len(stored) == expected, (task_id, stored)
    # The workers rode it out: still the same processes, taking tasks again, also after a restart
    # that finds them idle (polling the queue, not inside a task).
    assert all(worker.alive() for worker in cluster.worker_hosts)
    cluster.database.stop()
    time.sleep(2)
    cluster.database.start()
    after = cluster.submit(web_b)
    assert wait_ended(cluster, [after], timeout=60)[after]["status"] == "succeeded"
    assert all(worker.alive() for worker in cluster.worker_hosts)
    waited = [w.name for w in cluster.worker_hosts if "the database is not answering" in w.log.read_text()]
    assert waited, "no worker noticed the database was down while idle"
    print(
        "after the restart:",
        Counter(body["status"] for body in ended.values()),
        "attempts:",
        Counter(
            row[0]
            for row in cluster.database.query(
                "SELECT attempts FROM generations_task WHERE id = ANY(%s)", task_ids
            )
        ),
    )
