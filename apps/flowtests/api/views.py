"""Flow tests on the management API (DESIGN §8): `POST /api/v1/jobs/<id>/saveAsTest`,
`POST /api/v1/jobs/<id>/rerunForTest`, `GET /api/v1/flows/<id>/tests`,
`GET|PATCH|DELETE /api/v1/flows/<id>/tests/<testId>`, `POST /api/v1/flows/<id>/tests/run`."""

from django.core.exceptions import ValidationError as ModelValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import (
    MANAGE_DEFINITIONS,
    READ_DEFINITIONS,
    HasAnyPrivilege,
    HasPrivilege,
)
from apps.accounts.privileges import Privilege
from apps.core.api import DocumentJSONParser, Id, StrictSerializer, Text, invalid, read_body
from apps.core.openapi import problem_responses
from apps.executions import launch
from apps.executions.api import answers
from apps.executions.api.jobs import JOB_EXAMPLE
from apps.executions.api.serializers import JobSerializer
from apps.executions.api.views import caller_of
from apps.executions.errors import Refused
from apps.executions.models import Execution
from apps.flows.engine.capture import RELAXABLE
from apps.flows.models import Flow
from apps.flowtests import services
from apps.flowtests.models import FlowTest

# A test's report quotes what its recorded runs read and sent: running tests needs what
# reading the flow and its runs needs (run_flows alone let any caller read them; a probe).
RUN_TESTS = HasAnyPrivilege.of(Privilege.MANAGE_FLOWS, Privilege.VIEW_EXECUTIONS)
SAVE_TESTS = HasPrivilege.of(Privilege.MANAGE_FLOWS)

TEST_EXAMPLE = {
    "_id": "4",
    "_flowId": "12",
    "name": "Greets Ada",
    "_jobId": "3f2c8a9e-8d4b-4f39-9a57-6f1f5e0f9d11",
    "expected": {
        "status": "succeeded",
        "statusCode": 200,
        "answer": {"statusCode": 200, "result": "Hello Ada"},
        "steps": {
            "pageProcessors[0]": {
                "name": "prepareResponse",
                "kind": "script",
                "in": [{"name": "Ada"}],
                "out": [{"statusCode": 200, "result": "Hello Ada"}],
            }
        },
        "errors": [],
    },
    "ignoredFields": ["updatedAt"],
    "relaxed": [],
    "lastResult": "passed",
    "lastRunAt": "2026-11-29T23:10:00.000Z",
    "createdAt": "2026-11-29T23:00:00.000Z",
}
FAILED_REPORT_EXAMPLE = {
    "_id": "4",
    "name": "Greets Ada",
    "result": "failed",
    "summary": ["pageProcessors[0] (prepareResponse): record 0 out differs from the expected one."],
    "structure": [],
    "steps": [
        {
            "step": "pageProcessors[0]",
            "kind": "script",
            "name": "prepareResponse",
            "recordsIn": {"expected": 1, "actual": 1},
            "recordsOut": {"expected": 1, "actual": 1},
            "mismatches": [],
            "firstDifferenceOut": {
                "index": 0,
                "expected": {"statusCode": 200, "result": "Hello Ada"},
                "actual": {"statusCode": 200, "result": "Hi Ada"},
                "diff": [{"path": "/result", "expected": "Hello Ada", "actual": "Hi Ada"}],
            },
            "passed": False,
        }
    ],
    "mismatches": [],
    "answer": [{"path": "/result", "expected": "Hello Ada", "actual": "Hi Ada"}],
}


def test_document(test: FlowTest) -> dict:
    return {
        "_id": str(test.pk),
        "_flowId": str(test.flow_id),
        "name": test.name,
        "_jobId": test.source_process_id or None,
        "expected": test.expected,
        "ignoredFields": test.ignored_fields,
        "relaxed": test.relaxed,
        "lastResult": test.last_result or None,
        "lastRunAt": test.last_run_at.isoformat().replace("+00:00", "Z")
        if test.last_run_at
        else None,
        "createdAt": test.created_at.isoformat().replace("+00:00", "Z"),
    }


class SaveAsTestRequest(StrictSerializer):
    name = Text(max_length=200)


class TestChanges(StrictSerializer):
    name = Text(max_length=200, required=False)
    expected = serializers.DictField(required=False)
    ignoredFields = serializers.ListField(child=Text(max_length=200), required=False)
    relaxed = serializers.ListField(child=serializers.ChoiceField(RELAXABLE), required=False)


class RunTestsRequest(StrictSerializer):
    _testIds = serializers.ListField(child=Id(), required=False)


class TestSerializer(serializers.Serializer):
    """For the schema: the test document."""

    _id = serializers.CharField()
    _flowId = serializers.CharField()
    name = serializers.CharField()
    _jobId = serializers.CharField(allow_null=True)
    expected = serializers.DictField()
    ignoredFields = serializers.ListField(child=serializers.CharField())
    relaxed = serializers.ListField(child=serializers.CharField())
    lastResult = serializers.CharField(allow_null=True)
    lastRunAt = serializers.DateTimeField(allow_null=True)
    createdAt = serializers.DateTimeField()


class RunReportSerializer(serializers.Serializer):
    _id = serializers.CharField()
    name = serializers.CharField()
    result = serializers.ChoiceField(["passed", "failed"])
    summary = serializers.ListField(child=serializers.CharField())
    steps = serializers.ListField(child=serializers.DictField())
    mismatches = serializers.ListField(child=serializers.DictField())


def _saved(make):
    """A model validation error as a 400 problem naming the document's fields."""
    try:
        return make()
    except ModelValidationError as exc:
        names = {"ignored_fields": "ignoredFields", "__all__": "name"}
        raise invalid(
            {names.get(field, field): messages for field, messages in exc.message_dict.items()}
        ) from None


class SaveAsTestView(APIView):
    permission_classes = [HasPrivilege.of(Privilege.VIEW_EXECUTIONS), SAVE_TESTS]
    parser_classes = [DocumentJSONParser]

    @extend_schema(
        tags=["jobs"],
        operation_id="jobs_save_as_test",
        summary="Save a recorded job as a flow test (201; 409 when it was not recorded)",
        description="The test keeps the job's recording and its outcome as the expected one. "
        "Jobs record when they are Test runs, when their flow has captureForTests, or when "
        "they are re-runs made to save a test (POST …/rerunForTest).",
        request=SaveAsTestRequest,
        responses={201: TestSerializer, **problem_responses(400, 401, 403, 404, 409, 429)},
        examples=[
            OpenApiExample("Save", value={"name": "Greets Ada"}, request_only=True),
            OpenApiExample("Test", value=TEST_EXAMPLE, response_only=True),
        ],
    )
    def post(self, request, pk):
        job = get_object_or_404(Execution.objects.select_related("flow"), pk=pk)
        body = read_body(SaveAsTestRequest, request)
        if job.flow is not None and job.flow.tests.filter(name=body["name"]).exists():
            raise invalid({"name": [f"The flow has a test named {body['name']!r} already."]})
        test = _saved(
            lambda: services.save_as_test(execution=job, name=body["name"], user=request.user)
        )
        return Response(test_document(test), status=status.HTTP_201_CREATED)


class RerunForTestView(APIView):
    permission_classes = [
        HasPrivilege.of(Privilege.VIEW_EXECUTIONS),
        HasPrivilege.of(Privilege.RUN_FLOWS),
    ]

    @extend_schema(
        tags=["jobs"],
        operation_id="jobs_rerun_for_test",
        summary="Run a job again, recorded, to save it as a flow test (201: the new job)",
        description="The whole run again with the same input, variables and options, on a "
        "worker, recording its exchanges; save it with POST …/saveAsTest when it ends.",
        request=None,
        responses={201: JobSerializer, **problem_responses(401, 403, 404, 409, 429)},
        examples=[
            OpenApiExample(
                "Re-run",
                value={**JOB_EXAMPLE, "status": "queued", "trigger": "retry"},
                response_only=True,
            )
        ],
    )
    def post(self, request, pk):
        job = get_object_or_404(Execution, pk=pk)
        try:
            rerun, _ = launch.retry(job, caller=caller_of(request), whole=True, capture=True)
        except Refused as refused:
            raise answers.refusal(refused) from None
        return Response(JobSerializer(rerun).data, status=status.HTTP_201_CREATED)


def _flow(pk) -> Flow:
    return get_object_or_404(Flow.objects.select_related("application"), pk=pk)


class FlowTestsView(APIView):
    permission_classes = [READ_DEFINITIONS]

    @extend_schema(
        tags=["flows"],
        operation_id="flows_tests_list",
        summary="The flow's tests",
        responses={200: TestSerializer(many=True), **problem_responses(401, 403, 404, 429)},
        examples=[OpenApiExample("Tests", value=TEST_EXAMPLE, response_only=True)],
    )
    def get(self, request, pk):
        flow = _flow(pk)
        return Response([test_document(test) for test in flow.tests.order_by("name")])


class FlowTestView(APIView):
    parser_classes = [DocumentJSONParser]

    def get_permissions(self):
        if self.request.method == "GET":
            return [READ_DEFINITIONS()]
        return [MANAGE_DEFINITIONS()]

    def _test(self, pk, test_id) -> FlowTest:
        if not str(test_id).isdigit() or len(str(test_id)) > 18:
            raise Http404  # no test has such an id
        return get_object_or_404(
            FlowTest.objects.select_related("flow"), flow=_flow(pk), pk=test_id
        )

    @extend_schema(
        tags=["flows"],
        operation_id="flows_tests_retrieve",
        summary="A flow test",
        responses={200: TestSerializer, **problem_responses(401, 403, 404, 429)},
        examples=[OpenApiExample("Test", value=TEST_EXAMPLE, response_only=True)],
    )
    def get(self, request, pk, test_id):
        return Response(test_document(self._test(pk, test_id)))

    @extend_schema(
        tags=["flows"],
        operation_id="flows_tests_partial_update",
        summary="Edit a flow test: its name, expected values, ignored fields, relaxed parts",
        description="`expected` replaces the expected outcome (status, statusCode, answer, "
        "steps, errors; a part left out is not compared); `ignoredFields` are field names "
        "(any depth) or dotted paths left out of every comparison (timestamps, generated "
        "ids); `relaxed` lists the parts of outbound requests that may change: url, query, "
        "body.",
        request=TestChanges,
        responses={200: TestSerializer, **problem_responses(400, 401, 403, 404, 429)},
        examples=[
            OpenApiExample(
                "Ignore timestamps",
                value={"ignoredFields": ["updatedAt", "customer.id"], "relaxed": ["query"]},
                request_only=True,
            ),
            OpenApiExample("Test", value=TEST_EXAMPLE, response_only=True),
        ],
    )
    def patch(self, request, pk, test_id):
        test = self._test(pk, test_id)
        body = read_body(TestChanges, request)
        names = {"ignoredFields": "ignored_fields"}
        changes = {names.get(key, key): value for key, value in body.items()}
        if (
            "name" in changes
            and test.flow.tests.exclude(pk=test.pk).filter(name=changes["name"]).exists()
        ):
            raise invalid({"name": [f"The flow has a test named {changes['name']!r} already."]})
        test = _saved(lambda: services.update_test(test=test, changes=changes))
        return Response(test_document(test))

    @extend_schema(
        tags=["flows"],
        operation_id="flows_tests_destroy",
        summary="Delete a flow test",
        responses={204: None, **problem_responses(401, 403, 404, 429)},
    )
    def delete(self, request, pk, test_id):
        services.delete_test(test=self._test(pk, test_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RunFlowTestsView(APIView):
    permission_classes = [RUN_TESTS]
    parser_classes = [DocumentJSONParser]

    @extend_schema(
        tags=["flows"],
        operation_id="flows_tests_run",
        summary="Run the flow's tests offline (200: each test's result)",
        description="Each test replays the flow's current definition against its recording, "
        "with outbound sockets refused; `result` is passed or failed, and a failed test "
        "says why, step by step: records in and out, the first differing record as a JSON "
        "diff, outbound requests and data-table writes that no longer match. `_testIds` "
        "runs only those tests.",
        request=RunTestsRequest,
        responses={
            200: RunReportSerializer(many=True),
            **problem_responses(400, 401, 403, 404, 429),
        },
        examples=[
            OpenApiExample("Only some", value={"_testIds": ["4"]}, request_only=True),
            OpenApiExample("Results", value=FAILED_REPORT_EXAMPLE, response_only=True),
        ],
    )
    def post(self, request, pk):
        flow = _flow(pk)
        body = read_body(RunTestsRequest, request) if request.data else {}
        tests = None
        if "_testIds" in body:
            tests = list(flow.tests.filter(pk__in=body["_testIds"]).order_by("name"))
            if unknown := sorted(set(body["_testIds"]) - {str(t.pk) for t in tests}):
                raise invalid({"_testIds": [f"Not tests of this flow: {', '.join(unknown)}."]})
        return Response(services.run_tests(flow=flow, tests=tests))
