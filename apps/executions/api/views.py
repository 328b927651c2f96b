"""Flows as APIs: PhixFlow's trigger and poll URLs and Axway's flow-as-a-resource."""

import base64

from django.conf import settings
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
from rest_framework.views import APIView

from apps.accounts.models import ApiKey
from apps.core.openapi import ProblemSerializer, problem_responses
from apps.core.parsers import JSONParser, TextParser, XMLTextParser
from apps.core.problems import PROBLEM_CONTENT_TYPE
from apps.core.throttling import client_ip
from apps.executions import launch, selectors
from apps.executions.api import answers
from apps.executions.errors import NotAuthenticated, NotFound, Refused
from apps.flows.api_settings import INSTANCE_HEADER, normalise_path
from apps.flows.models import Flow

PARSERS = [
    JSONParser,
    parsers.FormParser,
    parsers.MultiPartParser,
    TextParser,
    XMLTextParser,
]


def _without_flowsite_credentials(request) -> dict:
    """The request's headers minus Flowsite's own credentials: the Authorization header
    that carried a Flowsite API key, and the session and CSRF cookies (and token)."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    if isinstance(request.auth, ApiKey):
        headers.pop("authorization", None)
    headers.pop("x-csrftoken", None)
    if "cookie" in headers:
        own = {settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME}
        kept = [
            part.strip()
            for part in headers["cookie"].split(";")
            if part.strip() and part.split("=", 1)[0].strip() not in own
        ]
        if kept:
            headers["cookie"] = "; ".join(kept)
        else:
            del headers["cookie"]
    return headers


def _raw_body(request) -> dict:
    """The body exactly as received: text, or base64 when it is not UTF-8."""
    raw = request._request.body
    if not raw:
        return {}
    try:
        return {"rawBody": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"rawBody": base64.b64encode(raw).decode(), "rawBodyEncoding": "base64"}


def trigger_request(request) -> dict:
    """trigger.args.request as the steps see it (PhixFlow's and Axway's scripts read it)."""
    query = {
        key: values[0] if len(values) == 1 else values
        for key, values in request.query_params.lists()
    }
    raw = _raw_body(request)  # before the parsers read the stream
    body = None
    if request.stream is not None or request.META.get("CONTENT_LENGTH"):
        data = request.data
        if hasattr(data, "lists"):  # form fields: repeated names become lists
            data = {key: values[0] if len(values) == 1 else values for key, values in data.lists()}
        body = data if data != {} else None
    path = request.path
    query_string = request.META.get("QUERY_STRING", "")
    return {
        "method": request.method,
        "url": request.build_absolute_uri(path) + (f"?{query_string}" if query_string else ""),
        "path": path,
        "headers": _without_flowsite_credentials(request),
        "query": query,
        "body": body,
        **raw,
        "contentType": request.content_type.split(";")[0].strip() if body is not None else "",
    }


def caller_of(request) -> launch.Caller:
    api_key = request.auth if isinstance(request.auth, ApiKey) else None
    return launch.Caller(user=request.user, api_key=api_key, client_ip=client_ip(request))


def prefers_async(prefer: str) -> bool:
    """Whether a Prefer header (RFC 7240) holds the respond-async preference."""
    return any(
        part.split(";", 1)[0].split("=", 1)[0].strip().lower() == "respond-async"
        for part in prefer.split(",")
    )


def without_instance_routes(endpoints, **kwargs):
    """drf-spectacular's preprocessing hook: PhixFlow's `/<instance>/api/1/…` routes are
    the `/api/1/…` ones again, so they are documented once, without the prefix."""
    return [endpoint for endpoint in endpoints if not endpoint[0].startswith("/{instance}/")]


class RunsView(APIView):
    """Views that start or read runs: the front door's refusals become problems."""

    # PhixFlow's instance segment when the caller used /<instance>/api/1/… (poll URLs
    # given back keep it); "" on /api/1/….
    instance = ""

    def dispatch(self, request, *args, **kwargs):
        self.instance = kwargs.pop("instance", "")
        return super().dispatch(request, *args, **kwargs)

    def handle_exception(self, exc):
        if isinstance(exc, Refused):
            exc = answers.refusal(exc)
        return super().handle_exception(exc)


class FlowCallView(RunsView):
    """Shared by every way of calling a flow."""

    permission_classes = [AllowAny]  # who may call is decided per flow (the front door)
    parser_classes = PARSERS

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Refuse a bad key before anything else.
        launch.check_idempotency_key(request.headers.get("Idempotency-Key", ""))

    def handle_exception(self, exc):
        # An anonymous caller learns nothing about which flows exist: 401, not 404.
        user = getattr(self.request, "user", None)
        if isinstance(exc, NotFound) and not (user and user.is_authenticated):
            exc = NotAuthenticated()
        return super().handle_exception(exc)

    def call(self, request, flow: Flow):
        respond_async = prefers_async(request.headers.get("Prefer", ""))
        launched = launch.call_flow(
            flow,
            caller=caller_of(request),
            request=trigger_request(request),
            respond_async=respond_async,
            timeout=request.query_params.get("timeout"),
            idempotency_key=request.headers.get("Idempotency-Key", ""),
        )
        if not launched.answer_now:
            response = answers.accepted(launched.execution, self.instance)
            if respond_async:
                response["Preference-Applied"] = "respond-async"  # RFC 7240
            return response
        return answers.answer(launched.execution, self.instance)


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
FLOW_FAILED = {
    "type": "urn:flowsite:problem:flow-failed",
    "title": "Internal Server Error",
    "status": 500,
    "detail": "Script prepareResponse at line 2: Error: boom 42",
    "processId": ENVELOPE["processId"],
    "pollUrl": ACCEPTED["pollUrl"],
    "errors": [
        {
            "step": "pageProcessors[0]",
            "stepName": "prepareResponse",
            "message": "Script prepareResponse at line 2: Error: boom 42",
            "record": {"company": "Acme"},
            "httpStatus": None,
        }
    ],
}
UPSTREAM_FAILED = {
    **FLOW_FAILED,
    "title": "Bad Gateway",
    "status": 502,
    "detail": "Look up company: 503 from https://crm.example.com/companies/7",
    "upstreamStatus": 503,
    "step": "pageProcessors[0]",
    "errors": [{**FLOW_FAILED["errors"][0], "httpStatus": 503}],
}
COMPLETED_WITH_ERRORS = {
    **ENVELOPE,
    "status": "completed_with_errors",
    "errors": {"count": 1, "first": [{**FLOW_FAILED["errors"][0], "record": {"company": "X"}}]},
}


def _failed(status: int, title: str, value: dict) -> dict:
    return {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(
            response=ProblemSerializer,
            description=title,
            examples=[OpenApiExample(title, value=value, response_only=True)],
        )
    }


CALL_RESPONSES = {
    (200, "application/json"): OpenApiResponse(
        response=OpenApiTypes.OBJECT,
        description="Sync/auto: the flow's response — its script's {statusCode, headers, "
        "body|result} sent as set (any 200-599, with X-Content-Type-Options: nosniff and "
        "Content-Security-Policy: sandbox), or the envelope {processId, status, data: "
        "{<outputName>: [...]}}; a run that completed with record errors adds errors "
        "{count, first} and answers the status api.errorStatus chooses (200 by default).",
        examples=[
            OpenApiExample("Envelope", value=ENVELOPE, response_only=True),
            OpenApiExample(
                "Completed with errors", value=COMPLETED_WITH_ERRORS, response_only=True
            ),
        ],
    ),
    (202, "application/json"): OpenApiResponse(
        response=OpenApiTypes.OBJECT,
        description="Async, or auto past its timeout: poll the Location.",
        examples=[OpenApiExample("Accepted", value=ACCEPTED, response_only=True)],
    ),
    **problem_responses(400, 401, 403, 404, 409, 413, 415, 429),
    **_failed(500, "The run failed (a script threw, a sandbox limit, a crash)", FLOW_FAILED),
    **_failed(502, "An outbound call failed the run", UPSTREAM_FAILED),
    **_failed(
        504,
        "The run passed its deadline",
        {
            **FLOW_FAILED,
            "title": "Gateway Timeout",
            "status": 504,
            "type": "urn:flowsite:problem:timed-out",
            "detail": "The run passed its deadline and was stopped.",
            "errors": [],
        },
    ),
}
CALL_PARAMETERS = [
    OpenApiParameter(
        "timeout",
        int,
        description="Milliseconds to wait: overrides a sync or auto flow's timeout; makes an "
        "async call wait that long for the result (200) before answering 202. Capped by "
        "FLOWSITE_MAX_SYNC_TIMEOUT_MS and the flow's run timeout.",
    ),
    OpenApiParameter(
        "Idempotency-Key", str, OpenApiParameter.HEADER, description="Same key, same run."
    ),
    OpenApiParameter(
        "Prefer",
        str,
        OpenApiParameter.HEADER,
        description="respond-async: 202 at once, whatever the mode and ?timeout "
        "(answered with Preference-Applied: respond-async).",
    ),
]


INSTANCE_PARAMETER = OpenApiParameter(
    INSTANCE_HEADER,
    str,
    OpenApiParameter.HEADER,
    description="The _id of the template's instance to run (Axway's formula instance). "
    "Required when several instances share the path (409 lists them); an id that is not "
    "one of the path's instances answers 404.",
    examples=[OpenApiExample("Instance", value="417240")],
)


TEXT_BODIES = (
    "The body is JSON here; text bodies (text/*, application/xml) and forms reach the flow "
    "too, as trigger.args.request.body and rawBody."
)


def call_schema(name: str, summary: str, methods: list[str], parameters=()):
    """One documented operation per method of a flow-calling view."""
    return extend_schema_view(
        **{
            method: extend_schema(
                operation_id=f"{name}_{method}",
                summary=summary,
                tags=["flows as APIs"],
                parameters=[*CALL_PARAMETERS, *parameters],
                # Only JSON is described: client generators cannot send text/plain.
                description=None if method == "get" else TEXT_BODIES,
                request=None if method == "get" else {"application/json": OpenApiTypes.OBJECT},
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
        return self.call(request, selectors.flow_by_name(application, flow))

    def post(self, request, application: str, flow: str):
        return self.get(request, application, flow)


@call_schema("trigger_flow_legacy", "Trigger a flow by its name alone (legacy)", ["get", "post"])
class LegacyTriggerView(FlowCallView):
    """GET/POST /api/1/action/<Flow>/trigger (PhixFlow before applications)."""

    http_method_names = ["get", "post", "options"]

    def get(self, request, flow: str):
        authenticated = bool(request.user and request.user.is_authenticated)
        return self.call(request, selectors.flow_by_legacy_name(flow, authenticated=authenticated))

    def post(self, request, flow: str):
        return self.get(request, flow)


@call_schema(
    "call_resource",
    "Call a flow as a resource (Axway); each API-enabled flow is also listed on its own path",
    ["get", "post", "put", "patch", "delete"],
    parameters=[INSTANCE_PARAMETER],
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
        flow = selectors.flow_by_resource(
            request.method,
            path,
            instance_id=request.headers.get(INSTANCE_HEADER, ""),
            authenticated=bool(request.user and request.user.is_authenticated),
        )
        return self.call(request, flow)

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
class PollView(RunsView):
    """GET /api/1/action/<Application>/<Flow>/poll/<processId>"""

    permission_classes = [AllowAny]  # the caller who started it, or view_executions

    def get(self, request, application: str, flow: str, process_id):
        execution = selectors.run_to_poll(process_id, application, flow)
        caller = caller_of(request)
        if execution is None or not selectors.may_poll(
            execution, user=caller.user, api_key=caller.api_key, client_ip=caller.client_ip
        ):
            raise NotFound(f"Process {process_id} does not exist.")
        return JsonResponse(answers.poll_document(execution))
