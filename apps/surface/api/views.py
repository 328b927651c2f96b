"""Flowfinity's REST surface: Execute() and Query()."""

import re
from typing import Any
from urllib.parse import urlencode

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import refuse_restricted_key
from apps.core.api import DocumentJSONParser
from apps.core.exceptions import ApiProblem
from apps.core.openapi import ProblemSerializer, problem_responses
from apps.core.problems import problem
from apps.core.throttling import client_ip
from apps.executions.api.answers import refusal
from apps.executions.errors import NotAuthenticated, Refused
from apps.flows.pipeline import MAX_ID
from apps.records.models import RecordField
from apps.records.selectors import InvalidQuery
from apps.records.validation import RecordInvalid
from apps.surface import selectors, services
from apps.surface.models import Operation

MAX_TRANSACTION_ID = 200


def refused(exc: selectors.SurfaceRefused) -> ApiProblem:
    return ApiProblem(exc.status, exc.detail, code=exc.code, **exc.extensions)


def invalid(detail: str, errors: dict[str, str], **extensions: Any) -> ApiProblem:
    entries = [
        {"pointer": "#" if name == "__all__" else f"#/{name}", "detail": message}
        for name, message in errors.items()
    ]
    return ApiProblem(400, detail, code="invalid", errors=entries, **extensions)


class SurfaceView(APIView):
    """Who may call is checked in the order callers debug it: signed in, the surface
    switched on, an integration account of the configuration, the privilege, then the
    operation or view itself and its roles."""

    permission_classes = [AllowAny]
    parser_classes = [DocumentJSONParser]
    surface: selectors.Surface

    def caller(self, request):
        user = request.user
        if not (user and user.is_authenticated):
            raise refusal(NotAuthenticated())
        refuse_restricted_key(request)
        try:
            selectors.check_caller(self.surface, user)
        except selectors.SurfaceRefused as exc:
            raise refused(exc) from None
        return user


# --- Execute() ------------------------------------------------------------------------

EXECUTE_EXAMPLE = {
    "RecordID": None,
    "ExternalTransactionId": "2f1c7a52-0001",
    "Company": "Acme",
    "Rating": {"Selection": "Warm"},
}
RECORD_EXAMPLE = {
    "RecordID": 17,
    "CreatedBy": "restuser",
    "CreatedOn": "2024-05-01T09:30:00.000Z",
    "ModifiedBy": "restuser",
    "ModifiedOn": "2024-05-01T09:30:00.000Z",
    "SubmissionId": 41,
    "Company": "Acme",
    "Rating": {"Selection": "Warm"},
    "processId": "3f2c8a9e-8d4b-4f39-9a57-6f1f5e0f9d11",
}
FLOW_FAILED_EXAMPLE = problem(
    422,
    "The operation's flow failed, so the record change was rolled back: no",
    code="flow-failed",
    processId="3f2c8a9e-8d4b-4f39-9a57-6f1f5e0f9d11",
    flowStatus="failed",
)


def _record_id(payload: dict, operation: Operation) -> int | None:
    value = payload.get("RecordID")
    if operation.action == Operation.Action.CREATE:
        if value not in (None, ""):
            raise invalid(
                f"RecordID must be null: {operation.name!r} creates a record.",
                {"RecordID": "Must be null to create a record."},
            )
        return None
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,18}", value.strip()):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise invalid(
            f"RecordID is required: {operation.name!r} {operation.action}s a record.",
            {"RecordID": "Expected the RecordID of the record to " + operation.action + "."},
        )
    return value


def _transaction_id(payload: dict, header: str) -> str:
    """Flowfinity's ExternalTransactionId, or the Idempotency-Key header: the same key."""
    value = payload.get("ExternalTransactionId")
    if value is None or value == "":
        value = ""  # none: every call applies
    elif not isinstance(value, str) or not value.strip() or len(value) > MAX_TRANSACTION_ID:
        raise invalid(
            f"ExternalTransactionId must be text of 1 to {MAX_TRANSACTION_ID} characters "
            "(or left out).",
            {"ExternalTransactionId": f"Expected text, {MAX_TRANSACTION_ID} characters at most."},
        )
    header = header.strip()
    if len(header) > MAX_TRANSACTION_ID:
        raise ApiProblem(
            400,
            f"Idempotency-Key is longer than {MAX_TRANSACTION_ID} characters.",
            code="invalid-idempotency-key",
        )
    if header and value and header != value.strip():
        raise invalid(
            "ExternalTransactionId and the Idempotency-Key header name different "
            "transactions: send one of them, or the same key in both.",
            {"ExternalTransactionId": "Differs from the Idempotency-Key header."},
        )
    return value.strip() or header


def record_problem(exc: RecordInvalid, operation: Operation) -> ApiProblem:
    """Every bad field at once, each with the values a choice field allows."""
    fields = {field.name: field for field in operation.record_type.fields.all()}
    entries = []
    for name, message in exc.errors.items():
        entry: dict[str, Any] = {
            "pointer": "#" if name == "__all__" else f"#/{name}",
            "detail": message,
        }
        field = fields.get(name)
        if field is not None:
            entry["type"] = field.type
            if field.type in RecordField.CHOICE_TYPES:
                entry["allowed"] = list(field.choices)
        entries.append(entry)
    names = ", ".join(name for name in exc.errors if name != "__all__") or "the record"
    return ApiProblem(
        400,
        f"The record is invalid ({len(entries)} problem(s)): {names}.",
        code="invalid-record",
        errors=entries,
    )


def flow_failed_problem(failed: services.FlowFailed) -> ApiProblem:
    execution = failed.execution
    return ApiProblem(
        failed.status_code,
        f"The operation's flow failed, so the record change was rolled back: {failed}",
        code="flow-failed",
        processId=str(execution.pk),
        flowStatus=execution.status,
    )


class ExecuteView(SurfaceView):
    """POST /api/rest/execute/<Application>/<Operation>"""

    surface = selectors.EXECUTE
    http_method_names = ["post", "options"]

    @extend_schema(
        operation_id="surface_execute",
        summary="Execute(): invoke an operation (create, update or delete a record)",
        tags=["integration surface"],
        request={"application/json": OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="The same as ExternalTransactionId in the body: a call repeated "
                "with it answers the first call's result (Idempotent-Replayed: true) and "
                "changes nothing.",
            )
        ],
        examples=[OpenApiExample("Create", value=EXECUTE_EXAMPLE, request_only=True)],
        responses={
            (201, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="Created: the record document (and processId when a flow ran).",
                examples=[OpenApiExample("Record", value=RECORD_EXAMPLE, response_only=True)],
            ),
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.OBJECT,
                description="Updated or deleted: the record document (as it was, when deleted).",
                examples=[OpenApiExample("Record", value=RECORD_EXAMPLE, response_only=True)],
            ),
            **problem_responses(400, 401, 403, 404, 409, 429),
            (422, "application/problem+json"): OpenApiResponse(
                ProblemSerializer,
                description="The operation's flow failed (or the status it chose): the record "
                "change was rolled back; processId names the run. Or the ExternalTransactionId "
                "(Idempotency-Key) was sent before with another RecordID or other values "
                "(idempotency-key-reused): nothing was changed.",
                examples=[
                    OpenApiExample("Flow failed", value=FLOW_FAILED_EXAMPLE, response_only=True),
                    OpenApiExample(
                        "Transaction id reused",
                        value={
                            "type": "urn:flowsite:problem:idempotency-key-reused",
                            "title": "Unprocessable Content",
                            "status": 422,
                            "detail": "ExternalTransactionId 'crm-42' was already used with a "
                            "different RecordID or different values; use a new one for each "
                            "transaction (the same one only to send the same call again).",
                        },
                        response_only=True,
                    ),
                ],
            ),
        },
    )
    def post(self, request, application: str, operation: str):
        user = self.caller(request)
        try:
            found = selectors.operation_by_name(application, operation)
            selectors.check_roles(found, user)
        except selectors.SurfaceRefused as exc:
            raise refused(exc) from None
        payload = request.data
        if not isinstance(payload, dict):
            raise invalid(
                "Expected a JSON object: RecordID, ExternalTransactionId and field values.",
                {"__all__": "Expected a JSON object."},
            )
        record_id = _record_id(payload, found)
        key = _transaction_id(payload, request.headers.get("Idempotency-Key", ""))
        data = {} if found.action == Operation.Action.DELETE else payload
        try:
            answer = services.execute_operation(
                operation=found,
                user=user,
                record_id=record_id,
                data=data,
                external_transaction_id=key,
                client_ip=client_ip(request),
            )
        except RecordInvalid as exc:
            raise record_problem(exc, found) from None
        except services.RecordNotFound as exc:
            raise ApiProblem(
                404, str(exc), code="record-not-found", RecordID=exc.record_id
            ) from None
        except services.OperationGone as exc:
            raise ApiProblem(404, str(exc), code="not-found") from None
        except services.TransactionIdReused as exc:
            raise ApiProblem(409, str(exc), code="transaction-id-reused") from None
        except services.TransactionIdReusedForAnother as exc:
            raise ApiProblem(422, str(exc), code="idempotency-key-reused") from None
        except services.FlowFailed as exc:
            raise flow_failed_problem(exc) from None
        except Refused as exc:  # e.g. the flow's concurrency limit: nothing was changed
            raise refusal(exc) from None
        headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
        return Response(answer.body, status=answer.status, headers=headers)


# --- Query() --------------------------------------------------------------------------

# Each view's own operation in the schema names its fields (apps.surface.openapi).
RECORDS = {
    "type": "array",
    "items": {"type": "object", "additionalProperties": {}, "description": "A record document."},
}


class QueryView(SurfaceView):
    """GET /api/rest/query/<Application>/<View>?<parameter>=<value>&limit=&cursor=&since=
    (HEAD too: a read, as RFC 9110 expects of every GET; a flow's GET is not offered it,
    since it runs the flow)."""

    surface = selectors.QUERY
    http_method_names = ["get", "head", "options"]

    @extend_schema(
        operation_id="surface_query",
        summary="Query(): read the records of a view",
        tags=["integration surface"],
        parameters=[
            OpenApiParameter("limit", int, description="Records per page, 1 to 1000 (100)."),
            OpenApiParameter("cursor", str, description="From the Link header's next URL."),
            OpenApiParameter(
                "since", int, description="Only records changed after this SubmissionId."
            ),
        ],
        responses={
            (200, "application/json"): OpenApiResponse(
                RECORDS,
                description="A JSON array of record documents; Link rel=next for the next "
                "page; X-Last-Submission-Id: the next sync's `since`.",
                examples=[OpenApiExample("Records", value=[RECORD_EXAMPLE], response_only=True)],
            ),
            **problem_responses(400, 401, 403, 404, 429),
        },
    )
    def get(self, request, application: str, view: str):
        user = self.caller(request)
        try:
            found = selectors.view_by_name(application, view)
            selectors.check_roles(found, user)
        except selectors.SurfaceRefused as exc:
            raise refused(exc) from None
        if repeated := {
            key: len(values) for key, values in request.query_params.lists() if len(values) > 1
        }:
            given = ", ".join(f"{key} is given {count} times" for key, count in repeated.items())
            raise invalid(
                f"Give each parameter once: {given}. For several values of a parameter that "
                "takes them (a filter 'in'), separate its values with commas.",
                {key: f"Given {count} times." for key, count in repeated.items()},
            )
        query = {key: request.query_params.get(key) for key in request.query_params}
        try:
            page = selectors.query_view(found, query)
        except selectors.BadQuery as exc:
            raise invalid(exc.detail, exc.errors, **exc.extensions) from None
        except InvalidQuery as exc:
            name = "cursor" if "after" in exc.errors else None
            errors = {name or key: message for key, message in exc.errors.items()}
            raise invalid(f"The query cannot run: {exc}", errors) from None
        headers = {}
        if page.next_cursor:
            following = urlencode({**query, "cursor": page.next_cursor})
            headers["Link"] = (
                f'<{request.build_absolute_uri(request.path)}?{following}>; rel="next"'
            )
        if page.last_submission_id is not None:
            headers["X-Last-Submission-Id"] = str(page.last_submission_id)
        # The documents as the database wrote them (records.documents_sql): not parsed and
        # encoded again.
        return HttpResponse(page.text, content_type="application/json", headers=headers)
