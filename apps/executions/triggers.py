"""Flows as APIs: who may call, which run answers, and how its outcome becomes a response.

Where runs execute: a *sync* call runs the flow in the web process that received it, with
the call's deadline. A queue hop to a worker would add a broker round trip (p50 ~5.5 ms,
p99 ~11.5 ms on Redis; ~50 ms+ on the embedded filesystem broker) to every call while the
web thread waits anyway, and scripts already run in isolated sandbox processes with
their own limits. *async* and *auto* calls run on Celery workers: their run must outlive
the request (auto answers 202 when the run takes longer than the timeout).
"""

import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.utils import timezone

from apps.accounts.models import ApiKey
from apps.accounts.permissions import MissingPrivilege
from apps.accounts.privileges import Privilege
from apps.core.exceptions import ApiProblem
from apps.core.problems import PROBLEM_CONTENT_TYPE, problem
from apps.executions import services
from apps.executions.models import Execution
from apps.flows.api_settings import DEFAULT_TIMEOUT_MS, FlowApi, input_errors, typed_query
from apps.flows.models import Flow

Status = Execution.Status
ACTIVE = (Status.QUEUED, Status.RUNNING)
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
HOP_BY_HOP = frozenset(
    {"connection", "content-length", "transfer-encoding", "keep-alive", "upgrade", "set-cookie"}
)


# --- Finding the flow -------------------------------------------------------------------


def _not_found(what: str) -> ApiProblem:
    return ApiProblem(404, f"{what} does not exist or is not an API.", code="not-found")


def flow_by_name(application: str, name: str) -> Flow:
    flow = (
        Flow.objects.select_related("application")
        .filter(application__name=application, name=name)
        .first()
    )
    if flow is None:
        raise _not_found(f"Flow {name!r} in application {application!r}")
    return flow


def flow_by_legacy_name(name: str, user) -> Flow:
    """PhixFlow's /api/1/action/<Flow>/trigger: the name must be unique among API flows."""
    flows = list(
        Flow.objects.select_related("application").filter(name=name, api_enabled=True)[:10]
    )
    if not flows:
        raise _not_found(f"Flow {name!r}")
    if len(flows) > 1:
        if not (user and user.is_authenticated):
            raise unauthenticated()  # only a caller may learn which applications exist
        urls = [trigger_url(flow) for flow in flows]
        raise ApiProblem(
            409,
            f"Several applications have a flow named {name!r}; call one of: {', '.join(urls)}",
            code="ambiguous-flow",
            urls=urls,
        )
    return flows[0]


def flow_by_resource(method: str, path: str) -> Flow:
    """Axway's flow as a resource: the enabled flow answering this method and path."""
    candidates = list(
        Flow.objects.select_related("application")
        .filter(api_enabled=True, api_path=path)
        .order_by()
    )
    for flow in candidates:
        if flow.api_method == method:
            return flow
    if candidates:
        allowed = ", ".join(sorted({flow.api_method for flow in candidates}))
        raise ApiProblem(
            405,
            f"{method} is not allowed on {path}. Allowed: {allowed}.",
            code="method-not-allowed",
            headers={"Allow": allowed},
        )
    raise _not_found(f"Resource {path}")


def trigger_url(flow: Flow) -> str:
    return f"/api/1/action/{quote(flow.application.name)}/{quote(flow.name)}/trigger"


def poll_url(execution: Execution) -> str:
    flow = execution.flow
    return f"/api/1/action/{quote(flow.application.name)}/{quote(flow.name)}/poll/{execution.pk}"


# --- Who may call -----------------------------------------------------------------------


def check_caller(flow: Flow, api: FlowApi, user, api_key: ApiKey | None) -> None:
    """Raise the 401/403/404/409 problem that applies, or return when the call may run."""
    authenticated = bool(user and user.is_authenticated)
    if not api.enabled:
        raise _not_found(f"Flow {flow.name!r}") if authenticated else unauthenticated()
    if not authenticated and not api.allow_anonymous:
        raise unauthenticated()
    if flow.disabled:
        raise ApiProblem(
            409, f"Flow {flow.name!r} is disabled: enable it to call it.", code="flow-disabled"
        )
    if not authenticated:
        return
    if not user.has_perm(Privilege.RUN_FLOWS.perm):
        raise MissingPrivilege(Privilege.RUN_FLOWS)
    if api.roles and not user.is_superuser:
        held = set(user.roles.filter(name__in=api.roles).values_list("name", flat=True))
        if not held:
            raise ApiProblem(
                403,
                f"Flow {flow.name!r} may be called only by members of: {', '.join(api.roles)}.",
                code="role-required",
                roles=list(api.roles),
            )
    restricted = api_key is not None and api_key.restricted
    if restricted and not api_key.flows.filter(pk=flow.pk).exists():
        raise ApiProblem(403, "This API key is restricted to other flows.", code="key-restricted")


def unauthenticated() -> ApiProblem:
    return ApiProblem(
        401,
        "Authentication credentials were not provided: send Authorization: Bearer <API key>.",
        code="not-authenticated",
        headers={"WWW-Authenticate": 'Bearer realm="flowsite"'},
    )


# --- Starting a run ---------------------------------------------------------------------

MAX_IDEMPOTENCY_KEY = 200


def idempotency_key(request) -> str:
    """The request's Idempotency-Key header ("" without one)."""
    key = request.headers.get("Idempotency-Key", "")
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise ApiProblem(
            400,
            f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY} characters.",
            code="invalid-idempotency-key",
        )
    return key


@dataclass
class Call:
    flow: Flow
    api: FlowApi
    request: dict | None  # trigger.args.request; None for a run of the management API
    user: Any
    client_ip: str | None
    mode: str
    timeout_ms: int
    idempotency_key: str = ""
    trigger: str = Execution.Trigger.API
    input: Any = None  # trigger.args.input
    variables: dict | None = None
    options: dict | None = None

    @property
    def scope(self) -> str:
        if self.user and self.user.is_authenticated:
            return f"user:{self.user.pk}"
        return f"anon:{self.client_ip}"

    @property
    def fingerprint(self) -> str:
        """The request as far as it matters: not the host it came through or ?timeout."""
        request = self.request
        if request is None:
            parts = [self.trigger, self.input, self.variables, self.options]
        else:
            query = {key: value for key, value in request["query"].items() if key != "timeout"}
            parts = [request["method"], request["path"], query, request["body"]]
        canonical = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


def call_timeout(api: FlowApi, mode: str, override: str | None) -> int:
    """The flow's timeout for this mode, or ?timeout=<ms>, capped by the server maximum."""
    if override is None or override == "":
        timeout = api.timeout_ms if api.mode == mode else DEFAULT_TIMEOUT_MS[mode]
    else:
        try:
            timeout = int(override)
        except ValueError:
            timeout = 0
        if timeout < 1:
            raise ApiProblem(
                400, "timeout must be a positive number of milliseconds.", code="invalid-timeout"
            )
    return min(timeout, settings.FLOWSITE_MAX_SYNC_TIMEOUT_MS)


def check_input(api: FlowApi, request: dict) -> None:
    if api.input_schema is None:
        return
    if request["body"] not in (None, ""):
        value = request["body"]
    else:
        value = typed_query(api.input_schema, request["query"])
    if errors := input_errors(api.input_schema, value):
        raise ApiProblem(
            400,
            f"The input does not match the flow's input schema ({len(errors)} problem(s)).",
            code="invalid-input",
            errors=errors,
        )


def start(call: Call) -> tuple[Execution, bool]:
    """The run answering this call: a new one, or the one its Idempotency-Key started."""
    if call.idempotency_key and (existing := _same_key(call)):
        return existing, False
    try:
        with transaction.atomic():
            if call.idempotency_key and (existing := _same_key(call)):
                return existing, False  # a twin got in first; the write lock serialised us
            _check_concurrency(call.flow)
            execution = services.create_execution(
                flow=call.flow,
                trigger=call.trigger,
                mode=call.mode,
                caller=call.user if call.user and call.user.is_authenticated else None,
                caller_ip=call.client_ip,
                request=call.request,
                input=call.input,
                variables=call.variables,
                options=call.options,
                idempotency_key=call.idempotency_key,
                caller_scope=call.scope,
                # Hashing the body is only worth it when a repeat may have to be recognised.
                request_fingerprint=call.fingerprint if call.idempotency_key else "",
                # A sync run ends with its call; async and auto runs outlive theirs and keep
                # the flow's own run timeout.
                timeout_ms=call.timeout_ms if call.mode == "sync" else None,
                # A sync call without a concurrency limit runs here at once: claim it now.
                status=Status.RUNNING
                if call.mode == "sync" and not call.flow.max_concurrency
                else Status.QUEUED,
                for_worker=call.mode != "sync",
            )
    except IntegrityError:
        # Another request with the same key won the race: answer with its run.
        existing = _same_key(call)
        if existing is None:
            raise
        return existing, False
    return execution, True


def _same_key(call: Call) -> Execution | None:
    ttl = timedelta(hours=settings.FLOWSITE_IDEMPOTENCY_TTL_HOURS)
    existing = (
        Execution.objects.select_related("flow__application")
        .filter(flow=call.flow, caller_scope=call.scope, idempotency_key=call.idempotency_key)
        .first()
    )
    if existing is None:
        return None
    if existing.created_at < timezone.now() - ttl:
        Execution.objects.filter(pk=existing.pk).update(idempotency_key="")  # expired
        return None
    if existing.request_fingerprint != call.fingerprint:
        raise ApiProblem(
            422,
            "This Idempotency-Key was already used with a different request; use a new key "
            "for a new request.",
            code="idempotency-key-reused",
            processId=str(existing.pk),
        )
    return existing


def _check_concurrency(flow: Flow) -> None:
    """The reject policy: refuse a call while the flow runs at its maximum (all machines)."""
    if not flow.max_concurrency or flow.concurrency_policy != Flow.ConcurrencyPolicy.REJECT:
        return
    Flow.objects.select_for_update().filter(pk=flow.pk).first()  # serialise across processes
    active = Execution.objects.filter(flow=flow, status__in=ACTIVE).count()
    if active >= flow.max_concurrency:
        raise ApiProblem(
            409,
            f"Flow {flow.name!r} is already running {active} time(s), its maximum; retry later.",
            code="concurrency-limit",
            headers={"Retry-After": "1"},
        )


def enqueue(execution: Execution) -> None:
    """Hand an API run to a worker now; if the broker is down, undo it and answer 503."""
    try:
        services.enqueue_execution(execution)
    except Exception as exc:  # kombu raises transport-specific errors
        Execution.objects.filter(pk=execution.pk).delete()
        raise ApiProblem(
            503,
            f"No worker can take the run now (the task broker is unavailable: {exc}). "
            "Nothing was started; retry later.",
            code="broker-unavailable",
            headers={"Retry-After": "5"},
        ) from None


def wait_for(execution: Execution, timeout_ms: int) -> Execution:
    """Wait for a run on a worker to finish, at most timeout_ms (looking at its status only)."""
    deadline = time.monotonic() + timeout_ms / 1000
    pause = 0.005
    status = execution.status
    while status not in Execution.TERMINAL and time.monotonic() < deadline:
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, 0.1)
        status = Execution.objects.filter(pk=execution.pk).values_list("status", flat=True).first()
        if status is None:  # undone: its broker failed under a twin request
            raise ApiProblem(
                503,
                "The run could not be handed to a worker; retry later.",
                code="broker-unavailable",
                headers={"Retry-After": "5"},
            )
    execution.refresh_from_db()
    return execution


# --- Answering --------------------------------------------------------------------------


def accepted(execution: Execution) -> JsonResponse:
    url = poll_url(execution)
    return JsonResponse(
        {"processId": str(execution.pk), "status": execution.status, "pollUrl": url},
        status=202,
        headers={"Location": url, "Retry-After": "1"},
    )


def failure(execution: Execution) -> JsonResponse:
    if execution.status == Status.TIMED_OUT:
        status, code = 504, "timed-out"
    elif execution.status == Status.CANCELLED:
        status, code = 409, "cancelled"
    else:
        status = execution.status_code if (execution.status_code or 0) >= 400 else 500
        code = "flow-failed"
    document = problem(
        status, execution.error or "The flow failed.", code=code, processId=str(execution.pk)
    )
    return JsonResponse(document, status=status, content_type=PROBLEM_CONTENT_TYPE)


def answer(execution: Execution) -> HttpResponse:
    """The HTTP answer of a run: 202 while it runs, the flow's response when it is done."""
    if not execution.is_finished:
        return accepted(execution)
    if execution.status != Status.SUCCEEDED:
        return failure(execution)
    document = execution.response or {}
    if "statusCode" not in document:
        return JsonResponse(document, status=200)
    return script_answer(document)


def _sendable(name: str, value: str) -> bool:
    """A header a flow may send: a token name and a one-line latin-1 value."""
    return (
        bool(TOKEN.fullmatch(name)) and "\r" not in value and "\n" not in value and value.isascii()
    )


def script_answer(document: dict) -> HttpResponse:
    """`{statusCode, headers?, body}` or Axway's `{statusCode, result}`."""
    headers = {
        str(name): str(value)
        for name, value in (document.get("headers") or {}).items()
        if str(name).lower() not in HOP_BY_HOP and _sendable(str(name), str(value))
    }
    body = document.get("body", document.get("result"))
    content_type = next(
        (value for name, value in headers.items() if name.lower() == "content-type"), None
    )
    if isinstance(body, str) and content_type and not content_type.startswith("application/json"):
        content = body.encode()
    else:
        content = json.dumps(body).encode()
        content_type = "application/json"
    headers = {name: value for name, value in headers.items() if name.lower() != "content-type"}
    return HttpResponse(
        content, status=int(document["statusCode"]), content_type=content_type, headers=headers
    )


def poll_document(execution: Execution) -> dict:
    """What the poll URL says about a run (always 200 for a run the caller may see)."""
    document: dict[str, Any] = {"processId": str(execution.pk), "status": execution.status}
    if not execution.is_finished:
        return document
    if execution.status != Status.SUCCEEDED:
        document["error"] = {"status": failure(execution).status_code, "detail": execution.error}
        return document
    response = execution.response or {}
    if "statusCode" in response:
        document["statusCode"] = response["statusCode"]
        document["body"] = response.get("body", response.get("result"))
    else:
        document["data"] = response.get("data", {})
    return document
