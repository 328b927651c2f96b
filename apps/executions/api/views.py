"""Flows as APIs: PhixFlow's trigger and poll URLs and Axway's flow-as-a-resource."""

from urllib.parse import urlencode

from django.http import JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import parsers
from rest_framework.permissions import AllowAny
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from apps.accounts.models import ApiKey
from apps.accounts.privileges import Privilege
from apps.core.exceptions import ApiProblem
from apps.core.openapi import problem_responses
from apps.core.parsers import JSONParser, TextParser, XMLTextParser
from apps.executions import services, triggers
from apps.executions.models import Execution
from apps.executions.redaction import redact
from apps.flows.api_settings import normalise_path
from apps.flows.models import Flow

PARSERS = [
    JSONParser,
    parsers.FormParser,
    parsers.MultiPartParser,
    TextParser,
    XMLTextParser,
]


def trigger_request(request) -> dict:
    """trigger.args.request, as PhixFlow and Axway scripts read it."""
    query = {
        key: values[0] if len(values) == 1 else values
        for key, values in request.query_params.lists()
    }
    body = None
    if request.stream is not None or request.META.get("CONTENT_LENGTH"):
        data = request.data
        if hasattr(data, "lists"):  # form fields: repeated names become lists
            data = {key: values[0] if len(values) == 1 else values for key, values in data.lists()}
        body = data if data != {} else None
    redacted_query = urlencode(redact(query), doseq=True)
    path = request.path
    return {
        "method": request.method,
        # Rebuilt from the redacted query: ?api_key=… never reaches storage or the flow.
        "url": request.build_absolute_uri(path) + (f"?{redacted_query}" if redacted_query else ""),
        "path": path,
        "headers": {name.lower(): value for name, value in request.headers.items()},
        "query": query,
        "body": body,
        "contentType": request.content_type.split(";")[0].strip() if body is not None else "",
    }


def client_ip(request) -> str | None:
    """The caller's address, through FLOWSITE_TRUSTED_PROXIES (as the rate limits see it)."""
    return BaseThrottle().get_ident(request)


class FlowCallView(APIView):
    """Shared by every way of calling a flow."""

    permission_classes = [AllowAny]  # who may call is decided per flow (check_caller)
    parser_classes = PARSERS

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        triggers.idempotency_key(request)  # refuse a bad one before anything else

    def handle_exception(self, exc):
        # An anonymous caller learns nothing about which flows exist: 401, not 404.
        user = getattr(self.request, "user", None)
        if (
            isinstance(exc, ApiProblem)
            and exc.status_code == 404
            and not (user and user.is_authenticated)
        ):
            exc = triggers.unauthenticated()
        return super().handle_exception(exc)

    def call(self, request, flow: Flow):
        api = flow.api_settings
        api_key = request.auth if isinstance(request.auth, ApiKey) else None
        triggers.check_caller(flow, api, request.user, api_key)
        mode = api.mode
        if "respond-async" in request.headers.get("Prefer", "").lower():
            mode = "async"
        trigger = trigger_request(request)
        triggers.check_input(api, trigger)
        call = triggers.Call(
            flow=flow,
            api=api,
            request=trigger,
            user=request.user,
            client_ip=client_ip(request),
            mode=mode,
            timeout_ms=triggers.call_timeout(api, mode, request.query_params.get("timeout")),
            idempotency_key=triggers.idempotency_key(request),
        )
        execution, created = triggers.start(call)
        if mode == "sync" and created:
            execution = services.run_in_process(execution, call.timeout_ms)
        elif mode == "async":
            if created:
                triggers.enqueue(execution)
            return triggers.accepted(execution)
        else:  # auto, or a repeated sync call whose first run may still be going
            if created:
                triggers.enqueue(execution)
            execution = triggers.wait_for(execution, call.timeout_ms)
        return triggers.answer(execution)


ENVELOPE = {
    "processId": "3f2c8a9e-8d4b-4f39-9a57-6f1f5e0f9d11",
    "status": "succeeded",
    "data": {"records": [{"company": "Acme", "rating": "Hot"}]},
}
ACCEPTED = {
    "processId": "3f2c8a9e-8d4b-4f39-9a57-6f1f5e0f9d11",
    "status": "queued",
    "pollUrl": "/api/1/action/Sales/Hot%20leads/poll/3f2c8a9e-8d4b-4f39-9a57-6f1f5e0f9d11",
}
CALL_RESPONSES = {
    (200, "application/json"): OpenApiResponse(
        response=OpenApiTypes.OBJECT,
        description="Sync/auto: the flow's response — its script's {statusCode, body|result} "
        "or the envelope {processId, status, data: {<outputName>: [...]}}.",
        examples=[OpenApiExample("Envelope", value=ENVELOPE, response_only=True)],
    ),
    (202, "application/json"): OpenApiResponse(
        response=OpenApiTypes.OBJECT,
        description="Async, or auto past its timeout: poll the Location.",
        examples=[OpenApiExample("Accepted", value=ACCEPTED, response_only=True)],
    ),
    **problem_responses(400, 401, 403, 404, 409, 413, 415, 429),
}
CALL_PARAMETERS = [
    OpenApiParameter("timeout", int, description="Milliseconds to wait (sync/auto); capped."),
    OpenApiParameter(
        "Idempotency-Key", str, OpenApiParameter.HEADER, description="Same key, same run."
    ),
    OpenApiParameter("Prefer", str, OpenApiParameter.HEADER, description="respond-async"),
]


def call_schema(name: str, summary: str, methods: list[str]):
    """One documented operation per method of a flow-calling view."""
    return extend_schema_view(
        **{
            method: extend_schema(
                operation_id=f"{name}_{method}",
                summary=summary,
                tags=["flows as APIs"],
                parameters=CALL_PARAMETERS,
                request=None
                if method == "get"
                else {"application/json": OpenApiTypes.OBJECT, "text/plain": OpenApiTypes.STR},
                responses=CALL_RESPONSES,
            )
            for method in methods
        }
    )


@call_schema("trigger_flow", "Trigger a flow (PhixFlow)", ["get", "post"])
class TriggerView(FlowCallView):
    """GET/POST /api/1/action/<Application>/<Flow>/trigger"""

    http_method_names = ["get", "post", "options"]

    def get(self, request, application: str, flow: str):
        return self.call(request, triggers.flow_by_name(application, flow))

    def post(self, request, application: str, flow: str):
        return self.get(request, application, flow)


@call_schema("trigger_flow_legacy", "Trigger a flow by its name alone (legacy)", ["get", "post"])
class LegacyTriggerView(FlowCallView):
    """GET/POST /api/1/action/<Flow>/trigger (PhixFlow before applications)."""

    http_method_names = ["get", "post", "options"]

    def get(self, request, flow: str):
        return self.call(request, triggers.flow_by_legacy_name(flow, request.user))

    def post(self, request, flow: str):
        return self.get(request, flow)


@call_schema(
    "call_resource",
    "Call a flow as a resource (Axway); each API-enabled flow is also listed on its own path",
    ["get", "post", "put", "patch", "delete"],
)
class ResourceView(FlowCallView):
    """Any method on /api/resources<path>: the flow whose api.method and api.path match."""

    http_method_names = ["get", "post", "put", "patch", "delete", "options"]

    @property
    def default_response_headers(self):
        # Which methods a path allows depends on its flows (the 405 problem says which);
        # DRF's view-wide Allow would claim all of them.
        headers = super().default_response_headers
        headers.pop("Allow", None)
        return headers

    def get(self, request, path: str):
        path = normalise_path("/" + path)
        return self.call(request, triggers.flow_by_resource(request.method, path))

    # One function per method, so each is documented as its own operation.
    def post(self, request, path: str):
        return self.get(request, path)

    def put(self, request, path: str):
        return self.get(request, path)

    def patch(self, request, path: str):
        return self.get(request, path)

    def delete(self, request, path: str):
        return self.get(request, path)


POLL_EXAMPLE = {**ENVELOPE, "data": {"records": [{"company": "Acme"}]}}


@extend_schema(
    tags=["flows as APIs"],
    summary="Poll a run started by an async or auto call",
    responses={
        (200, "application/json"): OpenApiResponse(
            response=OpenApiTypes.OBJECT,
            description="{processId, status} and, when finished, data or error.",
            examples=[
                OpenApiExample("Finished", value=POLL_EXAMPLE, response_only=True),
                OpenApiExample(
                    "Running",
                    value={"processId": ACCEPTED["processId"], "status": "running"},
                    response_only=True,
                ),
            ],
        ),
        **problem_responses(401, 404, 429),
    },
)
class PollView(APIView):
    """GET /api/1/action/<Application>/<Flow>/poll/<processId>"""

    permission_classes = [AllowAny]  # the caller who started it, or view_executions

    def get(self, request, application: str, flow: str, process_id):
        execution = (
            Execution.objects.select_related("flow__application")
            .filter(pk=process_id, flow__application__name=application, flow__name=flow)
            .first()
        )
        if execution is None or not may_poll(request, execution):
            raise ApiProblem(404, f"Process {process_id} does not exist.", code="not-found")
        return JsonResponse(triggers.poll_document(execution))


def may_poll(request, execution: Execution) -> bool:
    user = request.user
    if user and user.is_authenticated:
        return execution.caller_id == user.pk or user.has_perm(Privilege.VIEW_EXECUTIONS.perm)
    return execution.caller_id is None and execution.caller_ip == client_ip(request)
