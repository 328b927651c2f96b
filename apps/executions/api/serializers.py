"""Job documents (Celigo's name for a run): one Execution each."""

from rest_framework import serializers

from apps.core.api import StrictSerializer
from apps.executions.models import Execution, ExecutionError, StepRun


class StepSerializer(serializers.ModelSerializer):
    step = serializers.CharField(source="path")
    recordsIn = serializers.IntegerField(source="records_in")
    recordsOut = serializers.IntegerField(source="records_out")
    durationMs = serializers.FloatField(source="duration_ms")
    debug = serializers.ListField(source="debug_lines", child=serializers.CharField())

    class Meta:
        model = StepRun
        fields = (
            "step",
            "kind",
            "name",
            "recordsIn",
            "recordsOut",
            "errors",
            "durationMs",
            "debug",
        )


class JobSerializer(serializers.ModelSerializer):
    _id = serializers.UUIDField(source="id")
    _flowId = serializers.CharField(source="flow_id", allow_null=True)
    _parentJobId = serializers.UUIDField(source="parent_id", allow_null=True)
    _retryOfJobId = serializers.UUIDField(source="retry_of_id", allow_null=True)
    flowName = serializers.CharField(source="flow_name")
    caller = serializers.CharField(source="caller_label")
    statusCode = serializers.IntegerField(source="status_code", allow_null=True)
    numSuccess = serializers.IntegerField(source="num_success")
    numError = serializers.IntegerField(source="num_error")
    numIgnore = serializers.IntegerField(source="num_ignore")
    createdAt = serializers.DateTimeField(source="created_at")
    startedAt = serializers.DateTimeField(source="started_at", allow_null=True)
    endedAt = serializers.DateTimeField(source="finished_at", allow_null=True)
    durationMs = serializers.FloatField(source="duration_ms", allow_null=True)

    class Meta:
        model = Execution
        fields = (
            "_id",
            "_flowId",
            "flowName",
            "status",
            "trigger",
            "mode",
            "caller",
            "statusCode",
            "error",
            "numSuccess",
            "numError",
            "numIgnore",
            "input",
            "createdAt",
            "startedAt",
            "endedAt",
            "durationMs",
            "_parentJobId",
            "_retryOfJobId",
        )


class JobDetailSerializer(JobSerializer):
    steps = StepSerializer(many=True)

    class Meta(JobSerializer.Meta):
        fields = (*JobSerializer.Meta.fields, "steps")


class JobErrorSerializer(serializers.ModelSerializer):
    _id = serializers.IntegerField(source="id")
    step = serializers.CharField(source="step_path")
    stepName = serializers.CharField(source="step_name")
    httpStatus = serializers.IntegerField(source="http_status", allow_null=True)
    responseExcerpt = serializers.CharField(source="body_excerpt")
    createdAt = serializers.DateTimeField(source="created_at")

    class Meta:
        model = ExecutionError
        fields = (
            "_id",
            "step",
            "stepName",
            "message",
            "httpStatus",
            "responseExcerpt",
            "record",
            "retriable",
            "createdAt",
        )


class RetryRequest(StrictSerializer):
    fields = serializers.DictField(
        required=False,
        help_text="Values for what was redacted when the job was stored, by JSON pointer "
        '(e.g. {"/request/query/token": "…"}); a retry without them is refused (409).',
    )
