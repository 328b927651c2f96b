import uuid

from django.conf import settings
from django.db import models


class Execution(models.Model):
    """One run of a flow (Celigo job, PhixFlow process): its trigger, caller, outcome."""

    # Set when its outcome came after housekeeping had ended it (services._store_outcome).
    ended_late = False

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        COMPLETED_WITH_ERRORS = "completed_with_errors", "Completed with errors"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        TIMED_OUT = "timed_out", "Timed out"

    TERMINAL = frozenset(
        {
            Status.SUCCEEDED,
            Status.COMPLETED_WITH_ERRORS,
            Status.FAILED,
            Status.CANCELLED,
            Status.TIMED_OUT,
        }
    )

    class Trigger(models.TextChoices):
        API = "api", "API call"
        EXECUTE = "execute", "Execute() on the surface"
        RUN = "run", "Run (admin or management API)"
        TEST = "test", "Test run in the admin"
        SCHEDULE = "schedule", "Schedule"
        SUBFLOW = "subflow", "Sub-flow"
        RETRY = "retry", "Retry"
        ERROR_HANDLER = "error_handler", "Error handler"

    class Mode(models.TextChoices):
        SYNC = "sync", "Synchronous"
        ASYNC = "async", "Asynchronous"
        AUTO = "auto", "Auto"

    id = models.UUIDField("process id", primary_key=True, default=uuid.uuid4, editable=False)
    flow = models.ForeignKey(
        "flows.Flow",
        verbose_name="flow",
        null=True,
        on_delete=models.SET_NULL,
        related_name="executions",
    )
    flow_name = models.CharField(
        "flow name", max_length=210, help_text="Kept when the flow is deleted."
    )
    trigger = models.CharField("trigger", max_length=16, choices=Trigger.choices)
    mode = models.CharField("mode", max_length=8, choices=Mode.choices, default=Mode.ASYNC)
    status = models.CharField(
        "status", max_length=24, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    caller = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="caller",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="executions",
    )
    caller_label = models.CharField(
        "caller", max_length=200, blank=True, help_text="Who ran it, e.g. 'anonymous'."
    )
    caller_ip = models.GenericIPAddressField("client IP", null=True, blank=True)
    request = models.JSONField(
        "request", null=True, blank=True, help_text="The trigger request, secrets redacted."
    )
    input = models.JSONField("input", null=True, blank=True)
    variables = models.JSONField("variable overrides", default=dict, blank=True)
    options = models.JSONField(
        "run options",
        default=dict,
        blank=True,
        help_text="_exportIds (only these page generators), startDate/endDate (a delta "
        "window), retryOf (the failed records to run again).",
    )
    sealed_trigger = models.TextField(
        "sealed trigger",
        blank=True,
        editable=False,
        help_text="The request as its steps see it (secrets included), encrypted, kept only "
        "until the run ends.",
    )
    response = models.JSONField("response", null=True, blank=True)
    status_code = models.PositiveSmallIntegerField("HTTP status", null=True, blank=True)
    error = models.TextField("error", blank=True, help_text="Why the run failed, if it did.")
    num_success = models.PositiveIntegerField("records succeeded", default=0)
    num_error = models.PositiveIntegerField("records failed", default=0)
    num_ignore = models.PositiveIntegerField("records ignored", default=0)
    created_at = models.DateTimeField("created", auto_now_add=True, db_index=True)
    started_at = models.DateTimeField("started", null=True, blank=True)
    finished_at = models.DateTimeField("finished", null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        "heartbeat", null=True, blank=True, help_text="Last sign of life of the running process."
    )
    progress = models.JSONField(
        "progress",
        null=True,
        blank=True,
        editable=False,
        help_text="While it runs: each step's records in and out and errors so far, and the "
        "step it is in (written at most every 0.5 s, never in a run's first 0.5 s).",
    )
    timeout_ms = models.PositiveIntegerField("timeout (ms)", null=True, blank=True)
    cancel_requested = models.BooleanField("cancel requested", default=False)
    requeued_at = models.DateTimeField(
        "queued again",
        null=True,
        blank=True,
        help_text="When housekeeping queued it again because no worker had looked at it.",
    )
    parent = models.ForeignKey(
        "self",
        verbose_name="parent",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
    )
    retry_of = models.ForeignKey(
        "self",
        verbose_name="retry of",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="retries",
        help_text="The run this one retries.",
    )
    celery_task_id = models.CharField("Celery task id", max_length=64, blank=True)
    idempotency_key = models.CharField("idempotency key", max_length=200, blank=True)
    caller_scope = models.CharField(
        "caller scope",
        max_length=80,
        blank=True,
        help_text="Who an idempotency key belongs to: user:<id> or anon:<ip>.",
    )
    request_fingerprint = models.CharField("request fingerprint", max_length=64, blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=("flow", "caller_scope", "idempotency_key"),
                condition=~models.Q(idempotency_key=""),
                name="execution_idempotency_key",
            )
        ]
        indexes = [
            models.Index(fields=("flow", "status"), name="execution_flow_status"),
            models.Index(fields=("flow", "-created_at"), name="execution_flow_recent"),
            models.Index(fields=("status", "heartbeat_at"), name="execution_status_heartbeat"),
        ]

    def __str__(self) -> str:
        return f"{self.flow_name} · {self.id}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def duration_ms(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds() * 1000
        return None


class StepRun(models.Model):
    """What one step did over the whole run: records in and out, time, debug lines, samples."""

    execution = models.ForeignKey(
        Execution, verbose_name="execution", on_delete=models.CASCADE, related_name="steps"
    )
    position = models.PositiveSmallIntegerField("position")
    path = models.CharField("step", max_length=40, help_text="e.g. pageProcessors[2]")
    kind = models.CharField("kind", max_length=16)
    name = models.CharField("name", max_length=200)
    records_in = models.PositiveIntegerField("records in", default=0)
    records_out = models.PositiveIntegerField("records out", default=0)
    errors = models.PositiveIntegerField("errors", default=0)
    duration_ms = models.FloatField("duration (ms)", default=0)
    debug_lines = models.JSONField("debug lines", default=list, blank=True)
    sample_in = models.JSONField("sample input", default=list, blank=True)
    sample_out = models.JSONField("sample output", default=list, blank=True)

    class Meta:
        ordering = ("execution", "position")
        constraints = [
            models.UniqueConstraint(fields=("execution", "position"), name="step_position")
        ]

    def __str__(self) -> str:
        return f"{self.path} {self.name}"


class ExecutionError(models.Model):
    """A record that failed a step, or a failure of the run itself (no record)."""

    execution = models.ForeignKey(
        Execution, verbose_name="execution", on_delete=models.CASCADE, related_name="errors"
    )
    step_path = models.CharField("step", max_length=40, blank=True)
    step_name = models.CharField("step name", max_length=200, blank=True)
    record = models.JSONField("record", null=True, blank=True)
    message = models.TextField("message")
    http_status = models.PositiveSmallIntegerField("HTTP status", null=True, blank=True)
    body_excerpt = models.TextField("response excerpt", blank=True)
    retriable = models.BooleanField("retriable", default=False)
    created_at = models.DateTimeField("created", auto_now_add=True)

    class Meta:
        ordering = ("execution", "id")

    def __str__(self) -> str:
        return self.message[:80]


class RunRecording(models.Model):
    """What a recorded run exchanged with the outside world (flow tests): its trigger,
    variables, outbound exchanges, data-table reads and writes, sub-flow results, every
    step's records and its outcome. Encrypted as a whole; deleted with its run."""

    execution = models.OneToOneField(
        Execution, verbose_name="execution", on_delete=models.CASCADE, related_name="recording"
    )
    data = models.TextField(
        "recording", blank=True, help_text="Encrypted (FLOWSITE_ENCRYPTION_KEY); empty if cut."
    )
    size_bytes = models.PositiveIntegerField("size (bytes)", default=0)
    complete = models.BooleanField(
        "complete",
        default=True,
        help_text="False when the run exchanged more than FLOWSITE_TEST_CAPTURE_MAX_BYTES: "
        "nothing was kept, and it cannot be saved as a test.",
    )
    created_at = models.DateTimeField("created", auto_now_add=True)

    def __str__(self) -> str:
        return f"Recording of {self.execution_id}"
