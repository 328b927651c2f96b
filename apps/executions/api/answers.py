"""HTTP answers about runs, in one place: a refusal's problem document, the answer of a
sync or auto call, the 202 of an async one, and the poll document (DESIGN §8).

Run outcome → answer:
- `succeeded`: the flow's own `{statusCode, headers, body}` as it set it, else the envelope
  `{processId, status, data: {<outputName>: [...]}}` with 200;
- `completed_with_errors`: the same, with `errors: {count, first}` in the envelope, and
  the status `api.errorStatus` chooses (200, 207, 400-599 or "phixflow");
- `failed`: a problem with `processId`, `pollUrl` and the first errors; its status is the
  one `error(message, status)` chose, else 502 (with `upstreamStatus`) when an outbound
  call failed the run, else 500;
- `timed_out`: 504; `cancelled`: 409.

`instance` is PhixFlow's instance segment when the caller used `/<instance>/api/1/…`: the
poll URLs given back keep it.

The Content-Type of a flow's answer: the `contentType` its own answer sets (PhixFlow's
output attribute), else its `Content-Type` header, else the flow's `api.contentType`, else
JSON. A text body is sent as it is under that type; any other body is JSON, under that type
when it is a JSON one (application/json, …+json), else application/json.
"""

import json
from typing import Any

from django.http import HttpResponse, JsonResponse

from apps.accounts.permissions import MissingPrivilege
from apps.core.exceptions import ApiProblem
from apps.core.problems import PROBLEM_CONTENT_TYPE, problem
from apps.executions import errors, selectors, services
from apps.executions.models import Execution
from apps.flows import media_types
from apps.flows.api_settings import FlowApi
from apps.flows.engine.answer import header_text, is_dropped

Status = Execution.Status
# A flow's answer is the flow's content on Flowsite's origin: never sniffed, and sandboxed
# so that HTML in it cannot act as a page of the admin.
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}

REFUSAL_STATUS: dict[type[errors.Refused], int] = {
    errors.NotAuthenticated: 401,
    errors.NotFound: 404,
    errors.AmbiguousFlow: 409,
    errors.MethodNotAllowed: 405,
    errors.PrivilegeMissing: 403,
    errors.RoleRequired: 403,
    errors.KeyRestricted: 403,
    errors.FlowDisabled: 409,
    errors.FlowIsTemplate: 409,
    errors.AmbiguousInstance: 409,
    errors.InvalidInput: 400,
    errors.InvalidTimeout: 400,
    errors.InvalidIdempotencyKey: 400,
    errors.IdempotencyKeyReused: 422,
    errors.ConcurrencyLimit: 409,
    errors.BrokerUnavailable: 503,
    errors.TooManyWaiting: 503,
    errors.NotRetriable: 409,
    errors.SecretFieldsMissing: 409,
    errors.AlreadyFinished: 409,
}


def refusal(refused: errors.Refused) -> Exception:
    """The problem answering a refusal (DRF's exception handler renders it)."""
    if isinstance(refused, errors.PrivilegeMissing):
        return MissingPrivilege(refused.privilege)
    headers: dict[str, str] = {}
    details = dict(refused.details)
    if isinstance(refused, errors.NotAuthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="flowsite"'
    elif isinstance(refused, errors.MethodNotAllowed):
        headers["Allow"] = details.pop("allow")
    elif isinstance(refused, errors.ConcurrencyLimit):
        headers["Retry-After"] = "1"
        details.pop("active", None)
    elif isinstance(refused, errors.BrokerUnavailable):
        headers["Retry-After"] = "5"
    elif isinstance(refused, errors.TooManyWaiting):
        headers["Retry-After"] = "1"
    return ApiProblem(
        REFUSAL_STATUS[type(refused)],
        refused.message,
        code=refused.code,
        headers=headers,
        **details,
    )


def accepted(execution: Execution, instance: str = "") -> JsonResponse:
    url = selectors.poll_url(execution, instance)
    return JsonResponse(
        {"processId": str(execution.pk), "status": execution.status, "pollUrl": url},
        status=202,
        headers={"Location": url, "Retry-After": "1"},
    )


def _failure_status(execution: Execution) -> int:
    if execution.status == Status.TIMED_OUT:
        return 504
    if execution.status == Status.CANCELLED:
        return 409
    code = execution.status_code or 0
    return code if 400 <= code <= 599 else 500


def failure(execution: Execution, instance: str = "") -> JsonResponse:
    status = _failure_status(execution)
    code = {Status.TIMED_OUT: "timed-out", Status.CANCELLED: "cancelled"}.get(
        execution.status, "flow-failed"
    )
    if execution.error.startswith(services.RESPONSE_TOO_LARGE):
        code = "response-too-large"
    found = selectors.first_errors(execution)
    extensions: dict[str, Any] = {
        "processId": str(execution.pk),
        "pollUrl": selectors.poll_url(execution, instance),
        "errors": found,
    }
    if status == 502:
        upstream = next((e for e in found if e["httpStatus"] is not None), None)
        extensions["upstreamStatus"] = upstream["httpStatus"] if upstream else None
        extensions["step"] = (upstream or (found[0] if found else {})).get("step")
    document = problem(status, execution.error or "The flow failed.", code=code, **extensions)
    # A run refused for lack of room (a busy sandbox) may be tried again shortly.
    headers = {"Retry-After": "1"} if status == 503 else {}
    return JsonResponse(document, status=status, content_type=PROBLEM_CONTENT_TYPE, headers=headers)


def error_status(api: FlowApi, envelope: dict) -> int:
    """A completed_with_errors envelope's status, as `api.errorStatus` says."""
    choice = api.error_status
    if choice == "phixflow":  # seed 001: 400 when the output returns no record
        records = next(iter((envelope.get("data") or {}).values()), [])
        return 200 if records else 400
    return int(choice)


def answer(execution: Execution, instance: str = "") -> HttpResponse:
    """The HTTP answer of a run: 202 while it runs, its outcome when it is done."""
    if not execution.is_finished:
        return accepted(execution, instance)
    if execution.status not in (Status.SUCCEEDED, Status.COMPLETED_WITH_ERRORS):
        return failure(execution, instance)
    api = execution.flow.api_settings
    # As the flow set it when it ran in this process; as stored (redacted) otherwise.
    document = getattr(execution, "live_response", None) or execution.response or {}
    if "statusCode" in document:
        return flow_answer(document, api.content_type)
    # The envelope is JSON: under api.contentType when that is a JSON type.
    json_type = api.content_type if media_types.is_json(api.content_type) else "application/json"
    if execution.status == Status.SUCCEEDED:
        return JsonResponse(document, status=200, content_type=json_type, headers=SECURITY_HEADERS)
    document = {
        **document,
        "errors": {"count": execution.num_error, "first": selectors.first_errors(execution)},
    }
    response = JsonResponse(
        document,
        status=error_status(api, document),
        content_type=json_type,
        headers=SECURITY_HEADERS,
    )
    response.flow_answer = True  # the run's own answer, whatever status the flow chose
    return response


def flow_answer(document: dict, default_content_type: str = "") -> HttpResponse:
    """The flow's own `{statusCode, headers?, body, contentType?}` or Axway's
    `{statusCode, result}`, as it set it, with Flowsite's security headers (a flow's own
    CSP can only add to them). The engine has checked its status, headers and content type
    (apps.flows.engine.answer); the headers that act beyond the answer are dropped."""
    headers = {
        name: header_text(value)
        for name, value in (document.get("headers") or {}).items()
        if value is not None and not is_dropped(name)
    }
    status = int(document["statusCode"])
    body = document.get("body", document.get("result"))
    content_type = None
    for name in list(headers):
        if name.lower() == "content-type":
            content_type = headers.pop(name)
        elif name.lower() in ("x-content-type-options", "content-security-policy"):
            value = headers.pop(name)
            if name.lower() == "content-security-policy":
                headers["Content-Security-Policy"] = f"sandbox; {value}"
    if isinstance(document.get("contentType"), str) and document["contentType"].strip():
        content_type = document["contentType"]  # PhixFlow's output attribute
    content_type = content_type or default_content_type or None
    if status in (204, 304):
        content = b""
    elif isinstance(body, str) and content_type and not media_types.is_json(content_type):
        content = body.encode()
        content_type = media_types.as_sent(content_type)
    else:
        content = json.dumps(body).encode()
        if not (content_type and media_types.is_json(content_type)):
            content_type = "application/json"
    response = HttpResponse(content, status=status, content_type=content_type)
    for name, value in {**SECURITY_HEADERS, **headers}.items():
        response[name] = value
    if status in (204, 304):
        del response["Content-Type"]
    response.flow_answer = True  # sent as the flow set it: not turned into a problem
    return response


def poll_document(execution: Execution) -> dict:
    """What the poll URL says about a run (always 200 for a run the caller may see)."""
    document: dict[str, Any] = {"processId": str(execution.pk), "status": execution.status}
    if not execution.is_finished:
        return document
    if execution.status not in (Status.SUCCEEDED, Status.COMPLETED_WITH_ERRORS):
        document["error"] = {"status": _failure_status(execution), "detail": execution.error}
        if execution.num_error:
            document["errors"] = {
                "count": execution.num_error,
                "first": selectors.first_errors(execution),
            }
        return document
    response = execution.response or {}
    if "statusCode" in response:
        document["statusCode"] = response["statusCode"]
        document["headers"] = response.get("headers") or {}
        document["body"] = response.get("body", response.get("result"))
        if response.get("contentType"):
            document["contentType"] = response["contentType"]
    else:
        document["data"] = response.get("data", {})
    if execution.status == Status.COMPLETED_WITH_ERRORS:
        document["errors"] = {
            "count": execution.num_error,
            "first": selectors.first_errors(execution),
        }
    return document
