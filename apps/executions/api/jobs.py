"""GET /api/v1/jobs, GET /api/v1/jobs/<id>, …/errors, POST …/cancel (Celigo's job API)."""

import django_filters
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.permissions import HasPrivilege
from apps.accounts.privileges import Privilege
from apps.core.api import read_body
from apps.core.filters import IdFilter, StrictFilterSet, UtcIsoDateTimeFilter
from apps.core.openapi import problem_responses
from apps.core.pagination import ByIdCursorPagination, LinkHeaderCursorPagination
from apps.executions import launch
from apps.executions.api import answers
from apps.executions.api.serializers import (
    JobDetailSerializer,
    JobErrorSerializer,
    JobSerializer,
    RetryRequest,
)
from apps.executions.api.views import caller_of
from apps.executions.errors import Refused
from apps.executions.models import Execution

JOB_EXAMPLE = {
    "_id": "3f2c8a9e-8d4b-4f39-9a57-6f1f5e0f9d11",
    "_flowId": "12",
    "flowName": "Sales / Update Usage Stats for all Trialers",
    "status": "succeeded",
    "trigger": "schedule",
    "mode": "async",
    "caller": "schedule",
    "statusCode": None,
    "error": "",
    "numSuccess": 41,
    "numError": 1,
    "numIgnore": 0,
    "input": None,
    "createdAt": "2026-11-22T02:00:00.012Z",
    "startedAt": "2026-11-22T02:00:00.051Z",
    "endedAt": "2026-11-22T02:00:03.870Z",
    "durationMs": 3819.0,
    "_parentJobId": None,
    "_retryOfJobId": None,
}
STEP_EXAMPLE = {
    "step": "pageProcessors[0]",
    "kind": "export",
    "name": "Connections",
    "recordsIn": 42,
    "recordsOut": 42,
    "errors": 0,
    "durationMs": 812.4,
    "debug": [],
}
ERROR_EXAMPLE = {
    "_id": 7,
    "step": "pageProcessors[2]",
    "stepName": "Post stats",
    "message": "Post stats: 409 from http://crm.example.com/stats",
    "httpStatus": 409,
    "responseExcerpt": '{"message": "trialer 2 is archived"}',
    "record": {"id": 2},
    "retriable": False,
    "createdAt": "2026-11-22T02:00:02.101Z",
}


# Celigo's job statuses, as its users filter by them: the same runs under Flowsite's names.
CELIGO_STATUSES = {
    "completed": Execution.Status.SUCCEEDED,
    "canceled": Execution.Status.CANCELLED,
}


class StatusFilter(django_filters.ChoiceFilter):
    """A run status, or one of Celigo's names for it (`completed`, `canceled`)."""

    def __init__(self, *args, **kwargs):
        aliases = [
            (alias, f"{Execution.Status(status).label} (Celigo's {alias})")
            for alias, status in CELIGO_STATUSES.items()
        ]
        super().__init__(*args, choices=[*Execution.Status.choices, *aliases], **kwargs)

    def filter(self, qs, value):
        return super().filter(qs, CELIGO_STATUSES.get(value, value))


class JobFilter(StrictFilterSet):
    _flowId = IdFilter(field_name="flow_id")
    status = StatusFilter()
    createdAt_gte = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    createdAt_lte = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lte")

    class Meta:
        model = Execution
        fields = ()


@extend_schema(tags=["jobs"])
class JobViewSet(viewsets.ReadOnlyModelViewSet):
    """Runs of flows, newest first. Reading needs view_executions."""

    permission_classes = [HasPrivilege.of(Privilege.VIEW_EXECUTIONS)]
    pagination_class = LinkHeaderCursorPagination
    serializer_class = JobSerializer
    lookup_value_regex = "[0-9a-fA-F-]{36}"

    filter_backends = [DjangoFilterBackend]
    filterset_class = JobFilter

    def get_queryset(self):
        if self.action == "retrieve":
            return Execution.objects.prefetch_related("steps")
        return Execution.objects.all()

    def get_serializer_class(self):
        return JobDetailSerializer if self.action == "retrieve" else JobSerializer

    @extend_schema(
        summary="List jobs",
        examples=[OpenApiExample("Jobs", value=JOB_EXAMPLE, response_only=True)],
        responses={200: JobSerializer(many=True), **problem_responses(400, 401, 403, 429)},
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        summary="A job with its steps",
        examples=[
            OpenApiExample(
                "Job", value={**JOB_EXAMPLE, "steps": [STEP_EXAMPLE]}, response_only=True
            )
        ],
        responses={200: JobDetailSerializer, **problem_responses(401, 403, 404, 429)},
    )
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(
        summary="The job's failed records",
        examples=[OpenApiExample("Errors", value=ERROR_EXAMPLE, response_only=True)],
        responses={200: JobErrorSerializer(many=True), **problem_responses(401, 403, 404, 429)},
    )
    @action(detail=True, methods=["get"])
    def errors(self, request, pk=None):
        job = self.get_object()
        paginator = ByIdCursorPagination()
        page = paginator.paginate_queryset(job.errors.all(), request, view=self)
        return paginator.get_paginated_response(JobErrorSerializer(page, many=True).data)

    @extend_schema(
        summary="Cancel a job (stops at its next checkpoint; a queued one at once)",
        request=None,
        examples=[
            OpenApiExample(
                "Cancelling", value={**JOB_EXAMPLE, "status": "running"}, response_only=True
            )
        ],
        responses={200: JobSerializer, **problem_responses(401, 403, 404, 409, 429)},
    )
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[
            HasPrivilege.of(Privilege.VIEW_EXECUTIONS),
            HasPrivilege.of(Privilege.RUN_FLOWS),
        ],
    )
    def cancel(self, request, pk=None):
        job = launch.cancel(self.get_object(), caller=caller_of(request))
        # A queued job is cancelled at once; a running one stops at its next checkpoint
        # and always ends cancelled (202: accepted, not done yet).
        cancelled = job.status == Execution.Status.CANCELLED
        return Response(
            JobSerializer(job).data,
            status=status.HTTP_200_OK if cancelled else status.HTTP_202_ACCEPTED,
        )

    @extend_schema(
        summary="Retry a job: its failed records, or the whole run when it failed",
        description="A job that succeeded with failed records runs only those records again, "
        "each from the step it failed at; a failed, cancelled or timed-out job runs again "
        "with the same input, variables and options. The new job links to the original "
        "(_retryOfJobId). The same Idempotency-Key answers the same retry (200): a retry "
        "sent again after a lost answer starts nothing more.",
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Same key, same retry of this job.",
            )
        ],
        request=None,
        examples=[
            OpenApiExample(
                "Retrying",
                value={
                    **JOB_EXAMPLE,
                    "_id": "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
                    "status": "queued",
                    "trigger": "retry",
                    "_retryOfJobId": JOB_EXAMPLE["_id"],
                },
                response_only=True,
            )
        ],
        responses={
            201: JobSerializer,
            200: JobSerializer,
            **problem_responses(400, 401, 403, 404, 409, 422, 429),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[
            HasPrivilege.of(Privilege.VIEW_EXECUTIONS),
            HasPrivilege.of(Privilege.RUN_FLOWS),
        ],
    )
    def retry(self, request, pk=None):
        job = self.get_object()
        body = read_body(RetryRequest, request) if request.data else {}
        retry, created = launch.retry(
            job,
            caller=caller_of(request),
            fields=body.get("fields"),
            idempotency_key=request.headers.get("Idempotency-Key", ""),
        )
        return Response(
            JobSerializer(retry).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    def handle_exception(self, exc):
        if isinstance(exc, Refused):
            exc = answers.refusal(exc)
        return super().handle_exception(exc)
