from django.conf import settings
from django.db import models


class FlowTest(models.Model):
    """A run kept as a test: its recording (what the outside world answered) and the
    outcome expected when the flow's current definition is replayed against it."""

    class Result(models.TextChoices):
        PASSED = "passed", "Passed"
        FAILED = "failed", "Failed"

    flow = models.ForeignKey(
        "flows.Flow", verbose_name="flow", on_delete=models.CASCADE, related_name="tests"
    )
    name = models.CharField("name", max_length=200, help_text="Unique for its flow.")
    recording = models.TextField(
        "recording",
        help_text="The run's trigger, variables and exchanges, encrypted "
        "(FLOWSITE_ENCRYPTION_KEY).",
    )
    expected = models.JSONField(
        "expected outcome",
        default=dict,
        blank=True,
        help_text='{"status", "statusCode", "answer", "steps": {path: {"name", "in": [...], '
        '"out": [...]}}, "errors": [{"step", "message", "record"}]}',
    )
    ignored_fields = models.JSONField(
        "ignored fields",
        default=list,
        blank=True,
        help_text="Field names (any depth) or dotted paths left out of every comparison: "
        "timestamps, generated ids.",
    )
    relaxed = models.JSONField(
        "relaxed request parts",
        default=list,
        blank=True,
        help_text='Parts of outbound requests that may change without failing: "url", '
        '"query", "body".',
    )
    source_process_id = models.CharField(
        "recorded run", max_length=64, blank=True, help_text="The run it was saved from."
    )
    last_result = models.CharField("last result", max_length=8, choices=Result.choices, blank=True)
    last_report = models.JSONField("last report", null=True, blank=True)
    last_run_at = models.DateTimeField("last run", null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="created by",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField("created", auto_now_add=True)
    updated_at = models.DateTimeField("updated", auto_now=True)

    class Meta:
        ordering = ("flow", "name")
        constraints = [models.UniqueConstraint(fields=("flow", "name"), name="flowtest_flow_name")]

    def __str__(self) -> str:
        return self.name
