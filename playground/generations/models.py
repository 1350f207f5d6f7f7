import json
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform

from playground.catalog.text import repair_strings, repair_text
from playground.keys.models import cascade_unless_team


def new_task_id() -> str:
    return "task_" + secrets.token_hex(12)


def new_batch_id() -> str:
    return "batch_" + secrets.token_hex(12)


class RepairingJSONDecoder(json.JSONDecoder):
    """Stored JSON as it is read: text an older version let in (a lone surrogate, a NUL) comes
    back repaired (`catalog.text.repair_text`), so no page, file or re-run fails on a stored row.
    Migration 0006 repaired the rows stored before; this keeps any written since readable too."""

    def decode(self, s, *args, **kwargs):
        return repair_strings(super().decode(s, *args, **kwargs))


class RepairedText(models.TextField):
    """Text read for showing, repaired like stored JSON. On SQLite it comes as the JSON array
    `InputText` asks for (below)."""

    def from_db_value(self, value, expression, connection):
        if connection.vendor == "sqlite" and isinstance(value, str):
            value = json.loads(value)[0]
            if value is not None and not isinstance(value, str):
                value = json.dumps(value)
        return repair_text(value) if isinstance(value, str) else value


class InputText(KeyTextTransform):
    """`KT("input__<key>")` for showing: the text at a key of a task's input, repaired.

    SQLite's JSON_EXTRACT with one path answers the string decoded, which it cuts at a NUL and
    whose lone surrogate it hands over as bytes its driver cannot decode (the query fails); with
    two paths it answers a JSON array, whose text keeps the string's escapes as stored."""

    output_field = RepairedText()

    def __init__(self, key: str):
        super().__init__(key, "input")

    def as_sqlite(self, compiler, connection):
        column, params, keys = self.preprocess_lhs(compiler, connection)
        path = connection.ops.compile_json_path(keys)
        return f"JSON_EXTRACT({column}, %s, %s)", (*params, path, path)


class Status(models.TextChoices):
    QUEUED = "queued"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})


class Batch(models.Model):
    """Tasks submitted together, one per cell of a grid: the models chosen times the values of up
    to two varied input fields (`batches.submit_batch`). Its tasks are ordinary tasks that know
    their batch (`Task.batch`); it is seen by whoever sees them (the same scope columns)."""

    id = models.CharField(primary_key=True, max_length=40, default=new_batch_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=cascade_unless_team, related_name="batches")
    team = models.ForeignKey(
        "teams.Team", on_delete=models.PROTECT, null=True, blank=True, related_name="batches"
    )
    api_key = models.ForeignKey(
        "keys.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="batches"
    )
    demo_pass = models.ForeignKey(
        "keys.DemoPass", null=True, blank=True, on_delete=models.SET_NULL, related_name="batches"
    )
    guest = models.CharField(max_length=32, blank=True, default="")
    # The grid: [{"field": "model", "values": [slugs]}, {"field": "size", "values": [...]}, ...];
    # `task_ids` lists its cells' tasks row by row (the last axis varies fastest).
    axes = models.JSONField(decoder=RepairingJSONDecoder)
    task_ids = models.JSONField()
    # Per model, the input fields its tasks went without (that model has no such field).
    left_out = models.JSONField(default=dict, blank=True)
    cost_estimate = models.DecimalField(max_digits=12, decimal_places=4)
    request_id = models.CharField(max_length=64)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001 (as Task's)
    request_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="batch_unique_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def column_axis(self) -> int:
        """The axis shown as columns: the last one with more than one value (those after it have
        one, so the cells' order, `task_ids`, is still row by row)."""
        varied = [index for index, axis in enumerate(self.axes) if len(axis["values"]) > 1]
        return varied[-1] if varied else len(self.axes) - 1

    @property
    def shape(self) -> tuple[int, int]:
        """Rows by columns as the grid is shown: a column per value of the column axis, a row per
        combination of the others' values."""
        columns = len(self.axes[self.column_axis]["values"])
        return len(self.task_ids) // columns, columns

    def cell_values(self, index: int) -> dict:
        """The value of each axis at cell `index` of the grid (that of `task_ids[index]`)."""
        values = {}
        for axis in reversed(self.axes):
            size = len(axis["values"])
            values[axis["field"]] = axis["values"][index % size]
            index //= size
        return {axis["field"]: values[axis["field"]] for axis in self.axes}


class Task(models.Model):
    """One generation request and its result. Status moves only through `lifecycle.transition`."""

    id = models.CharField(primary_key=True, max_length=40, default=new_task_id, editable=False)
    # A task of a team stays the team's: its author's account cannot be deleted, only deactivated.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=cascade_unless_team, related_name="tasks")
    # The workspace: a team's task (`owner` is the member who ran it), or null for the owner's own.
    team = models.ForeignKey(
        "teams.Team", on_delete=models.PROTECT, null=True, blank=True, related_name="tasks"
    )
    api_key = models.ForeignKey(
        "keys.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    demo_pass = models.ForeignKey(
        "keys.DemoPass", null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    # Which guest on the demo pass made it: a random id kept in that guest's session, so guests
    # sharing one link never see each other's tasks (empty for everyone else).
    guest = models.CharField(max_length=32, blank=True, default="")
    model = models.ForeignKey("catalog.CatalogEntry", on_delete=models.PROTECT, related_name="tasks")
    input = models.JSONField(decoder=RepairingJSONDecoder)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    engine = models.CharField(max_length=20)
    cost_estimate = models.DecimalField(max_digits=12, decimal_places=4)
    cost_actual = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    output = models.JSONField(null=True, blank=True, decoder=RepairingJSONDecoder)
    error = models.JSONField(null=True, blank=True, decoder=RepairingJSONDecoder)
    request_id = models.CharField(max_length=64)
    # NULL (not ""): the unique constraint must ignore tasks submitted without a key.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    request_hash = models.CharField(max_length=64)
    source = models.CharField(max_length=10, default="api")
    # Execution bookkeeping: the upstream platform's task id (saved before waiting on it), how many
    # times a worker has started the task, and until when the current worker holds it.
    upstream_id = models.CharField(max_length=100, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # How far the current attempt's work is, 0..1, when its engine can tell (None: it cannot, or
    # the task has not started). Written by the worker as outputs render (`TaskRunContext.progress`).
    progress = models.FloatField(null=True, blank=True)
    webhook_url = models.URLField(max_length=2000, blank=True)
    # The batch it was submitted in, if any (an ordinary task otherwise in every way).
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-created_at", "-id"], name="task_owner_recent"),
            models.Index(fields=["team", "-created_at", "-id"], name="task_team_recent"),
            # The fair queue (fairness.py): the tasks waiting or running, and each owner's last start.
            models.Index(fields=["status", "created_at"], name="task_status_age"),
            models.Index(fields=["owner", "started_at"], name="task_owner_last_start"),
        ]
        constraints = [
            # The database, not a check-then-insert, guarantees one task per owner and key.
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="task_unique_idempotency_key",
            ),
            models.CheckConstraint(condition=Q(status__in=Status.values), name="task_status_known"),
        ]

    def __str__(self) -> str:
        return self.id

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def is_settled(self) -> bool:
        """Ended, with what it cost known: nothing about it changes any more. A task cancelled or
        failed while an upstream platform had it ends before its charge is known."""
        return self.status in TERMINAL and self.cost_actual is not None


class TaskEvent(models.Model):
    """Something that happened to a task, in order: a status change or an engine message."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=10, choices=[("status", "status"), ("message", "message")])
    status = models.CharField(max_length=12, choices=Status.choices)
    message = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["task", "id"], name="event_task_order")]

    def __str__(self) -> str:
        return f"{self.task_id} {self.status} {self.message}"


def new_input_id() -> str:
    return "in_" + secrets.token_hex(12)


class InputFile(models.Model):
    """A media input (an upload, a data URI) stored once per owner and referenced from task inputs
    by URL (`inputs.input_url`), so a task row and every page showing it stay small.

    Readable by its owner (session or API key) and by anyone holding a signed link. The same bytes
    submitted again by the same owner are the same file (`sha256`)."""

    id = models.CharField(primary_key=True, max_length=40, default=new_input_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="input_files")
    name = models.CharField(max_length=120)  # the last part of its URL, e.g. "photo.png"
    file = models.CharField(max_length=255)  # the path in the default storage
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "sha256"], name="input_file_unique_content")]

    def __str__(self) -> str:
        return f"{self.id}/{self.name}"


def new_share_token() -> str:
    """192 random bits, URL-safe: the whole of what lets anyone open a share page."""
    return secrets.token_urlsafe(24)


class Share(models.Model):
    """A finished task's public page, at `/s/<token>`, until its owner unshares it (the row is
    deleted, so the page and its files answer 404 at once, and sharing again makes a new token).
    `show_parameters`: whether the page shows the prompt and parameters, or only the outputs."""

    task = models.OneToOneField(Task, on_delete=models.CASCADE, related_name="share")
    token = models.CharField(max_length=64, unique=True, default=new_share_token, editable=False)
    show_parameters = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"share of {self.task_id}"
