"""The `mindvideo` engine: forwards a task to the MindVideo platform and brings its outputs home.

Submit `POST /api/v1/tasks` with an `Idempotency-Key` derived from our task id, so a retried submit
(a timeout, a worker that crashed before saving the upstream id) gets the original upstream task back
and is never charged twice; save the upstream id through the context before waiting on it (a task
started again resumes that id instead of submitting); poll `GET /api/v1/tasks/{id}` with backoff,
relaying upstream status changes and messages, and its progress when the platform's task body
carries one (`upstream_progress`; else the task's progress stays unknown); download every output
into our storage. Our own
input files go to the platform as signed URLs (or inline, see `upstream_input`). The key is
sent only to the platform's own origin; outputs hosted anywhere else (a CDN, a presigned bucket URL)
are fetched without it, under the SSRF rules of `fetch.fetch_url`. Outputs are checked to be the
media they claim (an HTML error page with a 200 is refused), and bounded in bytes and time.

Failures, by code: the key refused (401/403) -> `upstream_key_rejected`, which the runner records
on the stored key; 429, 5xx, timeouts, broken connections and malformed JSON are retried with
backoff up to MINDVIDEO_MAX_RETRIES times per request, then fail as `upstream_rate_limited`,
`upstream_unavailable`, `upstream_timeout` or `upstream_bad_response` naming the reason; any other
4xx -> `upstream_refused`; a task that failed upstream -> its own code and message. A task cancelled
upstream by someone else fails as `upstream_cancelled` rather than raising EngineStopped: our user
did not cancel it, and EngineStopped would leave our task processing with nobody to end it.

When `context.should_stop()` says stop, `context.was_cancelled()` says why. The user cancelled: ask
the platform to cancel too, read back what it billed (a task it had already finished keeps its
charge), and raise EngineStopped with that charge. Another attempt took our task over (this one lost
its lease): raise EngineStopped and leave the upstream task alone, for that attempt to carry on.

Money: `cost_actual` is what the platform billed, on success and also when we stop or fail after it
billed (a download that fails, a cancel that came too late); None when it cannot be read yet, for
`settle` to find out later. No Django ORM here: settings are read in `MindVideoConfig.from_settings`.
"""

import base64
import logging
import math
import mimetypes
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import httpx
from PIL import Image

from .base import EngineError, EngineJob, EngineResult, EngineStopped, RunContext
from .fetch import FetchError, fetch_url
from .media import MediaError, check_media_content, container_of

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.mindvideo.ai"
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
MAX_REDIRECTS = 5
UPSTREAM_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")  # goes into URL paths and Task.upstream_id
# Charges are kept with 12 digits, 4 of them after the point (Task.cost_actual).
LEDGER_LIMIT = Decimal("1e8")
MAX_RETRY_AFTER = 60.0  # seconds: a longer Retry-After is not honoured in full
BACKOFF_CAP_FACTOR = 10  # polls and retries back off from the interval to ten times it
# The type of a video or audio output served without a useful Content-Type, by its container.
CONTAINER_TYPES = {
    "matroska": "video/webm",
    "avi": "video/x-msvideo",
    "wav": "audio/wav",
    "flac": "audio/flac",
    "mpeg-audio": "audio/mpeg",
}
# Codes the runner acts on for *our* key; an upstream task failing with one of them is about the
# platform's own upstream, not our user's key, so it is reported under a neutral code.
OWN_KEY_CODES = frozenset({"upstream_key_rejected", "no_upstream_key"})
KEY_REJECTED = "The MindVideo platform rejected your MindVideo key: check or replace it on the Keys page."
NO_KEY = (
    "No MindVideo key is set for your account: add yours on the Keys page, "
    "or ask the person who runs this playground to set one for everyone."
)

T = TypeVar("T")


@dataclass(frozen=True)
class MindVideoConfig:
    base_url: str = DEFAULT_BASE_URL
    timeout: float = 30.0
    max_retries: int = 5
    poll_interval: float = 0.5
    max_wait: float = 3600.0
    max_download_bytes: int = 256 * 1024 * 1024
    download_timeout: float = 600.0
    max_pixels: int = 50_000_000
    inline_inputs: bool = False  # send our input files as data URIs even with a public URL

    @classmethod
    def from_settings(cls) -> "MindVideoConfig":
        from django.conf import settings

        return cls(
            base_url=settings.MINDVIDEO_BASE_URL,
            timeout=settings.MINDVIDEO_TIMEOUT,
            max_retries=settings.MINDVIDEO_MAX_RETRIES,
            poll_interval=settings.MINDVIDEO_POLL_INTERVAL,
            max_wait=settings.MINDVIDEO_MAX_WAIT,
            max_download_bytes=settings.MINDVIDEO_MAX_DOWNLOAD_BYTES,
            download_timeout=settings.MINDVIDEO_DOWNLOAD_TIMEOUT,
            max_pixels=settings.PLAYGROUND_MAX_INPUT_IMAGE_PIXELS,
            inline_inputs=settings.MINDVIDEO_INLINE_INPUTS,
        )

    @property
    def origin(self) -> httpx.URL:
        """The platform origin: MINDVIDEO_BASE_URL without a trailing `/api/v1`."""
        base = self.base_url.strip().rstrip("/")
        if base.endswith("/api/v1"):
            base = base[: -len("/api/v1")]
        url = httpx.URL(base)
        if url.scheme not in ("http", "https") or not url.host:
            raise EngineError(
                "upstream_misconfigured",
                "The MindVideo address set up here is not a web address: "
                "ask the person who runs this playground to correct MINDVIDEO_BASE_URL.",
            )
        return url

    def api_url(self, path: str) -> str:
        return f"{str(self.origin).rstrip('/')}/api/v1/{path}"

    def backoff(self, step: int) -> float:
        """The delay before retry `step` (1, 2, …): doubling from the poll interval, capped."""
        return min(self.poll_interval * 2 ** (step - 1), self.poll_interval * BACKOFF_CAP_FACTOR)


def idempotency_key(task_id: str) -> str:
    """The same for every submit of one task, so the platform makes (and charges) one task."""
    return f"playground-{task_id}"


def same_origin(url: httpx.URL, origin: httpx.URL) -> bool:
    def parts(u: httpx.URL) -> tuple[str, str, int | None]:
        return u.scheme, u.host, u.port or {"http": 80, "https": 443}.get(u.scheme)

    return parts(url) == parts(origin)


class Retryable(Exception):
    """A failure worth another try: rate limited, a server error, a timeout, a malformed answer.
    `reason` completes "MindVideo did not <do this>: …" in plain words ("it could not be reached")."""

    def __init__(self, code: str, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.code, self.reason, self.retry_after = code, reason, retry_after


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return min(max(float(response.headers.get("Retry-After", "")), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return None


def _refusal(response: httpx.Response, label_of: Callable[[str], str]) -> str:
    """Why the platform refused a request, in its own words, from the contract's error shape;
    the field it names is given by its label (`input.prompt` -> Prompt)."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    error = error if isinstance(error, dict) else {}
    logger.warning("MindVideo refused a request: HTTP %s %s", response.status_code, error)
    message = str(error.get("message") or "").strip()[:400]
    if not message:
        return f"MindVideo refused the task (HTTP {response.status_code})."
    field = str(error.get("field") or "").removeprefix("input.").split("[")[0].split(".")[0]
    label = label_of(field) if field else ""
    return f"MindVideo refused the task: {label + ': ' if label else ''}{message}"


def check_status(response: httpx.Response) -> None:
    """The platform refused our key -> EngineError; rate limited or a server error -> Retryable."""
    status = response.status_code
    if status in (401, 403):
        raise EngineError("upstream_key_rejected", KEY_REJECTED)
    if status == 429:
        raise Retryable("upstream_rate_limited", "it was busy (too many requests)", _retry_after(response))
    if status >= 500:
        raise Retryable(
            "upstream_unavailable", f"it had a server error (HTTP {status})", _retry_after(response)
        )


def _task_body(response: httpx.Response) -> dict:
    """A task object from a 2xx answer; anything else is a malformed answer, worth a retry."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not (isinstance(body, dict) and isinstance(body.get("task_id"), str)):
        raise Retryable("upstream_bad_response", "its answer could not be read as a task")
    if not UPSTREAM_ID.match(body["task_id"]):
        raise Retryable("upstream_bad_response", "its answer had an invalid task id")
    if not isinstance(body.get("status"), str):
        raise Retryable("upstream_bad_response", "its answer had no task status")
    return body


def file_size(size: int) -> str:
    """512 MB, 1.5 GB, 50 bytes."""
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} bytes"


def _cost(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        cost = Decimal(str(value))
    except InvalidOperation:
        return None
    if not cost.is_finite() or cost < 0:
        return None
    if cost >= LEDGER_LIMIT:
        # Not a charge we can keep (a fault there, or a base URL that is not MindVideo): read like
        # any other unreadable figure rather than written into the ledger, where it would not fit.
        logger.warning("MindVideo reported a charge of %s, beyond the ledger's %s", value, LEDGER_LIMIT)
        return None
    return cost


def upstream_progress(body: dict) -> float | None:
    """How far the platform says a running task is, from 0 to 1: its task body's `progress`, which
    the MindVideo contract does not have but a compatible platform may add (another playground
    does). None when there is none, or it is not a number from 0 to 1."""
    value = body.get("progress")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) if 0 <= value <= 1 else None


def charge_of(body: dict | None) -> Decimal | None:
    """What the platform billed for a task it has ended: its `cost_actual` (a task that failed or was
    cancelled without one cost nothing, as the contract has it; one that succeeded without one, its
    `cost_estimate`). None while it has not ended, or when that cannot be read."""
    if not body or body.get("status") not in TERMINAL:
        return None
    cost = _cost(body.get("cost_actual"))
    if cost is None:
        cost = Decimal(0) if body["status"] != "succeeded" else _cost(body.get("cost_estimate"))
    return cost


class MindVideoEngine:
    name = "mindvideo"
    title = "MindVideo"

    def __init__(self, config: MindVideoConfig | None = None):
        self.config = config or MindVideoConfig.from_settings()

    def run(self, job: EngineJob, context: RunContext) -> EngineResult:
        if not job.upstream_key:
            raise EngineError("no_upstream_key", NO_KEY)
        with httpx.Client(timeout=self.config.timeout, follow_redirects=False) as client:
            return UpstreamRun(self.config, client, job, context).run()

    def settle(self, job: EngineJob) -> Decimal | None:
        """What the platform billed for `job.upstream_id`, for a task of ours that ended without
        knowing; a task still running there is cancelled first (nobody will collect it). None while
        the platform cannot tell. No upstream id: nothing was ever submitted, so nothing billed."""
        if not job.upstream_id:
            return Decimal(0)
        if not job.upstream_key:
            return None
        with httpx.Client(timeout=min(self.config.timeout, 10.0), follow_redirects=False) as client:
            run = UpstreamRun(self.config, client, job, context=None)
            body = run.read_task(job.upstream_id)
            if body is not None and body["status"] not in TERMINAL:
                body = run.cancel_upstream(job.upstream_id)
            return charge_of(body)


class UpstreamRun:
    """One run of one task against the platform."""

    def __init__(
        self, config: MindVideoConfig, client: httpx.Client, job: EngineJob, context: RunContext | None
    ):
        self.config, self.client, self.job, self.context = config, client, job, context
        self.origin = config.origin
        self.auth = {"Authorization": f"Bearer {job.upstream_key}"}
        self.events_relayed = 0

    def run(self) -> EngineResult:
        upstream_id = self.job.upstream_id
        if upstream_id:
            self.context.report(f"Resuming MindVideo task {upstream_id} (attempt {self.job.attempt}).")
        else:
            if self.context.should_stop():
                raise EngineStopped("Cancelled before it reached MindVideo")
            upstream_id = self.submit()
            self.context.save_upstream_id(upstream_id)
            self.context.report(f"Submitted to MindVideo as {upstream_id}.")
        body = self.wait(upstream_id)
        status = body["status"]
        if status == "failed":
            error = body.get("error") if isinstance(body.get("error"), dict) else {}
            code = str(error.get("code") or "upstream_failed")[:64]
            message = str(error.get("message") or "The task failed on the MindVideo platform.")[:500]
            code = "upstream_failed" if code in OWN_KEY_CODES else code
            raise EngineError(code, message, cost_actual=charge_of(body))
        if status == "cancelled":
            raise EngineError(
                "upstream_cancelled",
                "The task was cancelled on the MindVideo platform.",
                cost_actual=charge_of(body),
            )
        return self.collect(body)

    # --- The API ------------------------------------------------------------------------------------

    def submit(self) -> str:
        task_input = self.upstream_input(self.job.input)
        body = self.with_retries(
            "accept the task",
            lambda: self.call(
                "POST",
                "tasks",
                json={"model": self.job.model_slug, "input": task_input},
                headers={"Idempotency-Key": idempotency_key(self.job.task_id)},
            ),
        )
        return body["task_id"]

    def upstream_input(self, value: Any) -> Any:
        """The input as the platform gets it. Our own input files go as the signed URL it can
        fetch them from when this server has a public address (and MINDVIDEO_INLINE_INPUTS is
        off), else inline as data URIs, the contract's other way to send a file."""
        if isinstance(value, dict):
            return {key: self.upstream_input(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.upstream_input(item) for item in value]
        stored = self.job.stored_inputs.get(value) if isinstance(value, str) else None
        if stored is None:
            return value
        if stored.shared_url and not self.config.inline_inputs:
            return stored.shared_url
        return f"data:{stored.content_type};base64,{base64.b64encode(stored.read()).decode()}"

    def wait(self, upstream_id: str) -> dict:
        """Poll until the upstream task ends; cancel it upstream if ours is cancelled or takes too
        long, and leave it running if another attempt has taken ours over."""
        deadline = time.monotonic() + self.config.max_wait
        delay, last_status, last_progress = self.config.poll_interval, None, None
        while True:
            if self.context.should_stop():
                raise self.stopped_while_waiting(upstream_id)
            try:
                body = self.with_retries(
                    "report the task's status", lambda: self.call("GET", f"tasks/{upstream_id}")
                )
            except EngineError as failure:
                # The platform has the task and may still run and bill it: the charge is not known
                # yet (the reaper settles it), never "nothing".
                failure.cost_actual = None
                raise
            progress = upstream_progress(body) if body["status"] == "processing" else None
            moved = progress is not None and progress != last_progress
            if body["status"] != last_status or moved:
                self.relay_events(upstream_id)  # its news comes with each step it reports
            if body["status"] != last_status:
                last_status = body["status"]
                self.context.report(f"MindVideo: {last_status}.")
            if progress is not None:
                last_progress = progress
                self.context.progress(progress)  # at each poll: the runner may have held one back
            if last_status in TERMINAL:
                return body
            if time.monotonic() + delay > deadline:
                final = self.cancel_upstream(upstream_id)
                raise EngineError(
                    "upstream_wait_exceeded",
                    f"MindVideo did not finish within {self.config.max_wait:g} s; the task was cancelled.",
                    cost_actual=charge_of(final),
                )
            time.sleep(delay)
            delay = min(delay * 1.5, self.config.poll_interval * BACKOFF_CAP_FACTOR)

    def stopped_while_waiting(self, upstream_id: str) -> EngineStopped:
        """Our task stopped while the platform has it. Cancelled by the user: cancel it there too;
        the charge is what the platform billed (it may have finished meanwhile). Taken over by another
        attempt: the work is still wanted, so it keeps running there for that attempt."""
        if not self.context.was_cancelled():
            return EngineStopped("Taken over by another attempt", cost_actual=None)
        final = self.cancel_upstream(upstream_id)
        reason = {
            "succeeded": "Cancelled after MindVideo had finished the task",
            "failed": "Cancelled after the task had failed on MindVideo",
            "cancelled": "Cancelled on MindVideo too",
        }.get((final or {}).get("status"), "Cancelled while MindVideo had the task")
        return EngineStopped(reason, cost_actual=charge_of(final))

    def read_task(self, upstream_id: str) -> dict | None:
        """The upstream task as the platform has it now (one try), or None if it could not be read."""
        try:
            return self.call("GET", f"tasks/{upstream_id}")
        except (Retryable, EngineError) as failure:
            logger.warning("could not read MindVideo task %s: %s", upstream_id, failure)
            return None

    def call(self, method: str, path: str, **kwargs: Any) -> dict:
        """One request to the API: the task object of a 2xx answer, or Retryable / EngineError."""
        headers = {**self.auth, **kwargs.pop("headers", {})}
        try:
            response = self.client.request(method, self.config.api_url(path), headers=headers, **kwargs)
        except httpx.TimeoutException:
            raise Retryable(
                "upstream_timeout", f"it did not answer within {self.config.timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            logger.info("MindVideo could not be reached: %r", exc)
            raise Retryable("upstream_unavailable", "it could not be reached") from None
        check_status(response)
        if response.status_code >= 300:
            raise EngineError("upstream_refused", _refusal(response, self.job.label))
        return _task_body(response)

    def with_retries(self, what: str, attempt: Callable[[], T]) -> T:
        tries = self.config.max_retries + 1
        for number in range(1, tries + 1):
            try:
                return attempt()
            except Retryable as failure:
                logger.warning(
                    "MindVideo (%s) for %s: %s; try %d of %d",
                    what,
                    self.job.task_id,
                    failure.reason,
                    number,
                    tries,
                )
                if number == tries:
                    raise EngineError(
                        failure.code,
                        f"MindVideo did not {what} after {tries} tries: {failure.reason}.",
                    ) from None
                self.context.report(f"MindVideo did not {what}: {failure.reason}; trying again.")
                time.sleep(max(self.config.backoff(number), failure.retry_after or 0.0))
        raise AssertionError("unreachable")

    def relay_events(self, upstream_id: str) -> None:
        """Pass on the platform's messages (best effort: progress news is not worth a failure)."""
        try:
            response = self.client.get(self.config.api_url(f"tasks/{upstream_id}/events"), headers=self.auth)
            events = response.json().get("data") if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            return
        if not isinstance(events, list):
            return
        for event in events[self.events_relayed :]:
            if isinstance(event, dict) and event.get("type") != "status" and event.get("message"):
                self.context.report(f"MindVideo: {str(event['message'])[:400]}")
        self.events_relayed = len(events)

    def cancel_upstream(self, upstream_id: str) -> dict | None:
        """Ask the platform to stop (best effort, one try): our task no longer wants the result.
        Returns the upstream task as it is afterwards, which may have ended otherwise meanwhile (a
        cancel of an ended task is refused), or None if that could not be read."""
        try:
            response = self.client.post(
                self.config.api_url(f"tasks/{upstream_id}/cancel"),
                headers=self.auth,
                timeout=min(self.config.timeout, 10.0),
            )
            logger.info("cancel of MindVideo task %s: HTTP %s", upstream_id, response.status_code)
        except httpx.HTTPError as exc:
            logger.warning("could not cancel MindVideo task %s: %s", upstream_id, type(exc).__name__)
        else:
            if response.status_code == 200:
                try:
                    body = _task_body(response)
                except Retryable:
                    body = None
                if body is not None and body["status"] in TERMINAL:
                    return body
        return self.read_task(upstream_id)

    # --- Outputs ------------------------------------------------------------------------------------

    def collect(self, body: dict) -> EngineResult:
        """Download the outputs of a task the platform has finished, and so billed: that charge
        stands whatever happens here (a failed download, a cancel)."""
        charge = charge_of(body)
        try:
            self.download_outputs(body, charge)
        except EngineError as failure:
            failure.cost_actual = charge
            raise
        return EngineResult(cost_actual=charge)

    def download_outputs(self, body: dict, charge: Decimal | None) -> None:
        key = self.job.output_key
        items = (body.get("output") or {}).get(key) if isinstance(body.get("output"), dict) else None
        if not isinstance(items, list) or not items:
            raise EngineError("upstream_bad_output", f"MindVideo reported success but returned no {key}.")
        for index, item in enumerate(items):
            url = item.get("url") if isinstance(item, dict) else None
            if not isinstance(url, str) or not url:
                raise EngineError("upstream_bad_output", f"MindVideo's output {index + 1} has no URL.")
            if self.context.should_stop():
                # The upstream task has ended: nothing to cancel there. Taken over: the new attempt
                # downloads the outputs itself.
                if self.context.was_cancelled():
                    raise EngineStopped("Cancelled after MindVideo had finished the task", cost_actual=charge)
                raise EngineStopped("Taken over by another attempt", cost_actual=None)
            self.context.report(f"Downloading output {index + 1} of {len(items)}.")
            content, content_type = self.with_retries(
                f"deliver output {index + 1}", lambda url=url, index=index: self.download(url, index)
            )
            self.save(index, url, content, content_type)

    def download(self, url: str, index: int) -> tuple[bytes, str]:
        """The file's bytes and content type. On the platform's own origin (which the operator chose)
        the key is sent and redirects are followed by hand; anywhere else, including where such a
        redirect leads, the key is not sent and the URL goes through the SSRF-safe fetcher."""
        started = time.monotonic()
        try:
            current = httpx.URL(url)
        except httpx.InvalidURL:
            raise EngineError(
                "upstream_bad_output", f"MindVideo's output {index + 1} URL is not valid."
            ) from None
        for _ in range(MAX_REDIRECTS + 1):
            if not same_origin(current, self.origin):
                return self.fetch_elsewhere(str(current), index, started)
            try:
                with self.client.stream("GET", current, headers=self.auth) as response:
                    if response.is_redirect:
                        current = current.join(response.headers["Location"])
                        continue
                    check_status(response)
                    if response.status_code != 200:
                        raise EngineError(
                            "upstream_output_unavailable",
                            f"Output {index + 1} could not be downloaded "
                            f"(the platform answered {response.status_code}).",
                        )
                    content_type = response.headers.get("Content-Type", "")
                    return self.read_capped(response, index, started), content_type
            except httpx.TimeoutException:
                raise Retryable(
                    "upstream_timeout", f"the download stalled for {self.config.timeout:g} s"
                ) from None
            except httpx.HTTPError as exc:
                logger.info("MindVideo download broke off: %r", exc)
                raise Retryable("upstream_unavailable", "the download broke off") from None
            except httpx.InvalidURL:
                raise EngineError(
                    "upstream_output_unavailable", f"Output {index + 1} redirects to an invalid URL."
                ) from None
        raise EngineError("upstream_output_unavailable", f"Output {index + 1} redirects too many times.")

    def fetch_elsewhere(self, url: str, index: int, started: float) -> tuple[bytes, str]:
        """An output hosted off the platform (a CDN, a presigned bucket URL): no key, and the
        fetcher's rules (no private or loopback addresses, every redirect checked)."""
        left = self.config.download_timeout - (time.monotonic() - started)
        try:
            fetched = fetch_url(url, max_bytes=self.config.max_download_bytes, timeout=max(left, 0.001))
        except FetchError as exc:
            reason = exc.message.rstrip(".")
            reason = reason[:1].lower() + reason[1:]  # it completes a sentence (see Retryable)
            if exc.code == "fetch_timeout":
                raise Retryable("upstream_timeout", reason) from None
            if exc.code == "fetch_failed":
                raise Retryable("upstream_unavailable", reason) from None
            if exc.code == "too_large":
                raise EngineError(
                    "upstream_output_too_large",
                    f"Output {index + 1} is larger than {file_size(self.config.max_download_bytes)}.",
                ) from None
            raise EngineError(
                "upstream_output_unavailable", f"Output {index + 1} could not be downloaded: {exc.message}"
            ) from None
        return fetched.content, fetched.content_type

    def read_capped(self, response: httpx.Response, index: int, started: float) -> bytes:
        limit = self.config.max_download_bytes
        too_large = EngineError(
            "upstream_output_too_large", f"Output {index + 1} is larger than {file_size(limit)}."
        )
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks, total = [], 0
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > limit:
                raise too_large
            if time.monotonic() - started > self.config.download_timeout:
                raise EngineError(
                    "upstream_output_too_slow",
                    f"Output {index + 1} took longer than {self.config.download_timeout:g} s to download.",
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def save(self, index: int, url: str, content: bytes, content_type: str) -> None:
        """Keep a downloaded output, refusing one that is not the media it should be (an HTML error
        page with a 200, say). Images get their true type and size from Pillow."""
        kind = self.job.kind
        try:
            image = check_media_content(kind, content, self.config.max_pixels)
        except MediaError as exc:
            raise EngineError(
                "upstream_bad_output", f"Output {index + 1} is not usable: {exc.message}"
            ) from None
        if image is not None:
            mime = Image.MIME.get(image.format or "", "application/octet-stream")
            extension = {"image/jpeg": ".jpg"}.get(mime) or mimetypes.guess_extension(mime) or ".img"
            self.context.save_output(
                f"{index}{extension}", content, mime, width=image.width, height=image.height
            )
            return
        mime = content_type.split(";")[0].strip().lower()
        if not mime.startswith(f"{kind}/"):
            container = container_of(content[:16]) or ""
            mime = CONTAINER_TYPES.get(container, f"{kind}/{container}" if container else "")
            mime = mime or mimetypes.guess_type(httpx.URL(url).path)[0] or "application/octet-stream"
        extension = mimetypes.guess_extension(mime) or ".bin"
        self.context.save_output(f"{index}{extension}", content, mime)


def check_key(secret: str, config: MindVideoConfig | None = None) -> tuple[bool, str]:
    """Ask the platform whether it accepts `secret`, without creating or paying for anything.

    Reads a task id that cannot exist: 404 means the key passed authentication, 401/403 that it
    was rejected. Returns (accepted, what to tell the user)."""
    config = config or MindVideoConfig.from_settings()
    try:
        url = config.api_url("tasks/playground-connection-test")
        with httpx.Client(timeout=min(config.timeout, 15.0), trust_env=False) as client:
            response = client.get(url, headers={"Authorization": f"Bearer {secret}"})
    except EngineError as exc:
        return False, exc.message
    except httpx.HTTPError as exc:
        # The class only: an httpx error about a header can quote it, the key with it.
        logger.info("MindVideo could not be reached to check a key: %s", type(exc).__name__)
        return False, "Could not reach the MindVideo platform, so the key was not checked. Try again later."
    if response.status_code in (401, 403):
        return False, "Rejected by the platform: this key is not valid (or disabled)."
    if response.status_code in (200, 404):
        return True, "Accepted by the platform."
    return False, (
        f"The MindVideo platform had a problem (it answered {response.status_code}), "
        "so the key was not checked. Try again later."
    )
