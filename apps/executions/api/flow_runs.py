"""The management API's flow actions that start or list runs (`POST /api/v1/flows/<id>/run`,
`GET /api/v1/flows/<id>/logs`): served by this app, which runs flows, on the flows' URLs."""

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts.permissions import HasPrivilege
from apps.accounts.privileges import Privilege
from apps.core.api import DocumentJSONParser, Id, StrictSerializer, invalid, read_body
from apps.core.openapi import problem_responses
from apps.core.pagination import LinkHeaderCursorPagination
from apps.executions import launch
from apps.executions.api import answers
from apps.executions.api.jobs import JOB_EXAMPLE
from apps.executions.api.serializers import JobSerializer
from apps.executions.api.views import caller_of
from apps.executions.errors import Refused
from apps.executions.models import Execution
from apps.flows.models import Flow


class RunRequest(StrictSerializer):
    input = serializers.JSONField(required=False)
    _exportIds = serializers.ListField(child=Id(), required=False, allow_empty=False)
    variables = serializers.DictField(required=False)
    startDate = serializers.DateTimeField(required=False)
    endDate = serializers.DateTimeField(required=False)


run_schema = extend_schema(
    tags=["flows"],
    summary="Run a flow now, with custom input (201: the job)",
    description="`input` is validated against the flow's api.inputSchema and reaches steps "
    "as {{trigger.args.input}} (and is the starting record of a flow without page "
    "generators); `_exportIds` runs only these page generators; `variables` override the "
    "flow's; `startDate`/`endDate` are {{trigger.args.startDate}}/{{trigger.args.endDate}}. "
    "The same Idempotency-Key answers the same job (200).",
    parameters=[
        OpenApiParameter(
            "Idempotency-Key", str, OpenApiParameter.HEADER, description="Same key, same job."
        )
    ],
    request={
        "application/json": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "input": {},
                "_exportIds": {"type": "array", "items": {"type": "string"}},
                "variables": {"type": "object"},
                "startDate": {"type": "string", "format": "date-time"},
                "endDate": {"type": "string", "format": "date-time"},
            },
        }
    },
    responses={
        201: JobSerializer,
        200: JobSerializer,
        **problem_responses(400, 401, 403, 404, 409, 429),
    },
    examples=[
        OpenApiExample(
            "Run with custom input",
            value={"input": {"skus": ["A-1", "B-2"]}, "variables": {"region": "EU"}},
            request_only=True,
        ),
        OpenApiExample(
            "Run only some exports in a window",
            value={
                "_exportIds": ["7"],
                "startDate": "2026-11-01T00:00:00Z",
                "endDate": "2026-11-22T00:00:00Z",
            },
            request_only=True,
        ),
        OpenApiExample(
            "Job",
            value={**JOB_EXAMPLE, "status": "queued", "trigger": "run", "caller": "ci-bot"},
            response_only=True,
        ),
    ],
)

logs_schema = extend_schema(
    tags=["flows"],
    summary="The flow's recent jobs (newest first)",
    parameters=[
        OpenApiParameter("limit", int, description="Page size (100, at most 1000)."),
        OpenApiParameter("cursor", str, description="From the Link header's next URL."),
    ],
    responses={200: JobSerializer(many=True), **problem_responses(401, 403, 404, 429)},
    examples=[OpenApiExample("Logs", value=JOB_EXAMPLE, response_only=True)],
)


def run_options(flow: Flow, body: dict) -> dict:
    options: dict = {}
    if export_ids := body.get("_exportIds"):
        generators = {str(g.get("_exportId")) for g in flow.page_generators}
        if unknown := [pk for pk in export_ids if pk not in generators]:
            raise invalid(
                {
                    "_exportIds": [
                        f"Not page generators of this flow: {', '.join(unknown)}. Its page "
                        f"generators are: {', '.join(sorted(generators)) or 'none'}."
                    ]
                }
            )
        options["_exportIds"] = export_ids
    start, end = body.get("startDate"), body.get("endDate")
    if start and end and end < start:
        raise invalid({"endDate": ["endDate is before startDate."]})
    for name, moment in (("startDate", start), ("endDate", end)):
        if moment is not None:
            options[name] = moment.isoformat().replace("+00:00", "Z")
    return options


class FlowRunsViewSet(viewsets.GenericViewSet):
    """Runs of one flow, on the flow's management URL."""

    queryset = Flow.objects.select_related("application")
    serializer_class = JobSerializer
    parser_classes = [DocumentJSONParser]

    def get_permissions(self):
        if self.action == "logs":
            return [HasPrivilege.of(Privilege.VIEW_EXECUTIONS)()]
        return [HasPrivilege.of(Privilege.RUN_FLOWS)()]

    def handle_exception(self, exc):
        if isinstance(exc, Refused):
            exc = answers.refusal(exc)
        return super().handle_exception(exc)

    @run_schema
    @action(detail=True, methods=["post"])
    def run(self, request, pk=None):
        flow = self.get_object()
        body = read_body(RunRequest, request)
        execution, created = launch.run(
            flow,
            caller=caller_of(request),
            input=body.get("input"),
            variables=body.get("variables"),
            options=run_options(flow, body),
            idempotency_key=request.headers.get("Idempotency-Key", ""),
        )
        return Response(
            JobSerializer(execution).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @logs_schema
    @action(detail=True, methods=["get"])
    def logs(self, request, pk=None):
        flow = self.get_object()
        paginator = LinkHeaderCursorPagination()
        page = paginator.paginate_queryset(Execution.objects.filter(flow=flow), request, view=self)
        return paginator.get_paginated_response(JobSerializer(page, many=True).data)
