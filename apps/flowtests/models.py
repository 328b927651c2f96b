from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from apps.flows.engine.capture import RELAXABLE


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

    def clean(self) -> None:
        problems = {}
        if not isinstance(self.expected, dict):
            problems["expected"] = ["An object: status, statusCode, answer, steps, errors."]
        elif found := expected_errors(self.expected):
            problems["expected"] = found
        ignored = self.ignored_fields
        if not (isinstance(ignored, list) and all(isinstance(i, str) for i in ignored)):
            problems["ignored_fields"] = ["A list of field names or dotted paths."]
        relaxed = self.relaxed
        if not (isinstance(relaxed, list) and set(relaxed) <= set(RELAXABLE)):
            problems["relaxed"] = [f"A list of {', '.join(RELAXABLE)}."]
        if problems:
            raise ValidationError(problems)


def expected_errors(expected: dict) -> list[str]:
    """What is wrong with an edited expected outcome's shape (its values are the builder's)."""
    problems = []
    unknown = set(expected) - {"status", "statusCode", "answer", "steps", "errors"}
    if unknown:
        problems.append(
            f"Unknown part(s) {', '.join(sorted(unknown))}: the parts are status, statusCode, "
            "answer, steps and errors."
        )
    steps = expected.get("steps", {})
    if not isinstance(steps, dict) or not all(
        isinstance(step, dict)
        and all(isinstance(step.get(side, []), list) for side in ("in", "out"))
        for step in steps.values()
    ):
        problems.append('steps: {"<step path>": {"in": [records], "out": [records]}}.')
    errors = expected.get("errors", [])
    if not isinstance(errors, list) or not all(isinstance(e, dict) for e in errors):
        problems.append('errors: a list of {"step", "message", "record"}.')
    return problems
