"""The contract between the task runner and an engine.

An engine receives an `EngineJob` (plain data: nothing from Django's ORM) and a `RunContext` the
runner implements; it saves each output file through the context as soon as it exists, so memory
stays bounded, and returns an `EngineResult`. It signals a failure the user should read with
`EngineError`, and stops early (raising `EngineStopped`) when `context.should_stop()` says so.

`should_stop()` is true for two different reasons, which `context.was_cancelled()` tells apart: the
user cancelled (the work is unwanted: an engine cancels any upstream work it started), or another
attempt took the task over after this one lost its lease (the work is still wanted: an engine leaves
upstream work alone, for the new attempt to carry on).

Progress: an engine that knows how far its work is says so with `context.progress(fraction)`, as
often as it likes (every video frame, say): the runner keeps at most a few values a second, never a
step back, and always the value at the end of a step (`step_done=True`: an image saved). A value
that comes sooner than that after the last one kept is dropped, so an engine says its figure again
(at each poll of a platform, say) rather than only when it changes. An engine that cannot tell
says nothing, and the task's progress stays unknown.

Money: an engine that pays an upstream platform says what the work was billed, also when it stops or
fails after the platform billed it (`cost_actual` on `EngineStopped` and `EngineError`): 0 when
nothing was billed, None when it cannot tell yet (the task then counts at its estimate until the
charge is known; see `generations.reaper.settle_charges`).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol


@dataclass(frozen=True)
class StoredInput:
    """An input file this server keeps, which the job's input references by URL: the engine reads
    it with `read()` rather than fetching it over HTTP. `shared_url` is a signed URL anyone can
    fetch, when this server has a public address (else "")."""

    name: str
    content_type: str
    size: int
    read: Callable[[], bytes]
    shared_url: str = ""


@dataclass(frozen=True)
class EngineJob:
    task_id: str
    owner_id: int
    model_slug: str
    kind: str  # image | video
    output_key: str  # images | videos
    roles: dict[str, str]
    input_schema: dict[str, Any]
    input: dict[str, Any]
    upstream_key: str | None = None  # the owner's platform key, for engines that call one
    upstream_id: str = ""  # set when a retried task already has an upstream task
    attempt: int = 1
    # Our own input files the input references, by the URL written there.
    stored_inputs: dict[str, StoredInput] = field(default_factory=dict)

    def role(self, name: str, default: Any = None) -> Any:
        """The input value playing `name`, else the schema default, else `default`."""
        field_name = self.roles.get(name)
        if not field_name:
            return default
        if field_name in self.input:
            return self.input[field_name]
        return self.input_schema.get("properties", {}).get(field_name, {}).get("default", default)

    def label(self, field_name: str) -> str:
        """What people call an input field: its schema title, else its name in words ("" for a
        field the schema does not have)."""
        schema = self.input_schema.get("properties", {}).get(field_name)
        if not isinstance(schema, dict):
            return ""
        return str(schema.get("title") or field_name.replace("_", " ").capitalize())

    def describe(self, path: tuple[Any, ...]) -> str:
        """An input value's place in words: ("image_urls", 0) -> "Reference images, item 1"."""
        name = str(path[0])
        items = [f"item {part + 1}" for part in path[1:] if isinstance(part, int)]
        return ", ".join([self.label(name) or name, *items])


@dataclass
class EngineResult:
    billed_seconds: int | None = None  # video seconds actually produced, when they set the price
    cost_actual: Decimal | None = None  # what an upstream platform reported charging
    messages: list[str] = field(default_factory=list)


NOTHING = Decimal(0)


class EngineError(Exception):
    """A failure to show the user: `code` for programs, `message` in plain words. `cost_actual`:
    what the work was billed before it failed (0: nothing; None: not known)."""

    def __init__(self, code: str, message: str, *, cost_actual: Decimal | None = NOTHING):
        super().__init__(message)
        self.code = code
        self.message = message
        self.cost_actual = cost_actual


class EngineStopped(Exception):
    """The engine stopped because `context.should_stop()` said so: the user cancelled, or another
    attempt took the task over. `cost_actual`: what the work was billed (0: nothing; None: not
    known); `reason`: why it stopped where it did, in words, e.g. "Cancelled after MindVideo had
    finished the task"."""

    def __init__(self, reason: str = "", *, cost_actual: Decimal | None = NOTHING):
        super().__init__(reason)
        self.reason = reason
        self.cost_actual = cost_actual


class RunContext(Protocol):
    def report(self, message: str) -> None: ...

    def should_stop(self) -> bool: ...

    def was_cancelled(self) -> bool:
        """Why `should_stop()` is true: the user cancelled (True), or another attempt took the task
        over (False: leave upstream work running for it)."""
        ...

    def progress(self, fraction: float, *, step_done: bool = False) -> None:
        """How far the work is, from 0 to 1 (see the module docstring). `step_done`: `fraction` is
        where a step of the work ended (an image or a video saved), which is always kept."""
        ...

    def save_output(self, name: str, content: bytes, content_type: str, **meta: Any) -> None: ...

    def save_upstream_id(self, upstream_id: str) -> None: ...


class Engine(Protocol):
    name: str
    title: str  # the name people read: "MindVideo"

    def run(self, job: EngineJob, context: RunContext) -> EngineResult: ...

    def settle(self, job: EngineJob) -> Decimal | None:
        """What the job's upstream work was billed, for a task that ended here without knowing
        (cancelled or failed while the platform still had it): None while the platform cannot
        tell yet. Upstream work still running is cancelled first: nobody will collect it."""
        ...
