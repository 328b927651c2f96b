"""RFC 9457 problem details for every API error.

DRF exceptions go through `exception_handler`; everything else that leaves an API view
(unknown URLs, Django's own 4xx answers, unexpected exceptions) is turned into a problem
by `apps.core.middleware.ApiProblemMiddleware`.
"""

import math
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:flowsite:problem:"


def title_of(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a code a flow chose, such as 499
        return "Client error" if status < 500 else "Server error"


def problem(status: int, detail: str, *, code: str | None = None, **extensions: Any) -> dict:
    """A problem document. `code` names the problem type; extensions are added as is."""
    code = code or title_of(status).lower().replace(" ", "-")
    return {
        "type": TYPE_PREFIX + code,
        "title": title_of(status),
        "status": status,
        "detail": detail,
        **extensions,
    }


def problem_response(
    status: int, detail: str, *, headers: dict | None = None, **kwargs: Any
) -> JsonResponse:
    """A plain Django response carrying a problem, for code outside DRF views."""
    return JsonResponse(
        problem(status, detail, **kwargs),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def _flatten(detail: Any, pointer: str = "#") -> list[dict]:
    """DRF's nested ValidationError detail as RFC 9457 `errors` with JSON pointers."""
    if isinstance(detail, dict):
        items: list[dict] = []
        for key, value in detail.items():
            child = pointer if key == "non_field_errors" else f"{pointer}/{key}"
            items.extend(_flatten(value, child))
        return items
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return [{"pointer": pointer, "detail": str(item)} for item in detail]
        items = []
        for index, value in enumerate(detail):
            items.extend(_flatten(value, f"{pointer}/{index}"))
        return items
    return [{"pointer": pointer, "detail": str(detail)}]


def problem_for_exception(exc: exceptions.APIException) -> dict:
    code = str(exc.default_code).replace("_", "-")
    extensions = dict(getattr(exc, "extensions", {}))
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        fields = sorted({e["pointer"].removeprefix("#/") or "(request)" for e in errors})
        detail = "The request has invalid fields: " + ", ".join(fields) + "."
        return problem(exc.status_code, detail, code=code, errors=errors, **extensions)
    return problem(exc.status_code, str(exc.detail), code=code, **extensions)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's EXCEPTION_HANDLER: APIExceptions become problem+json; others propagate."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None

    headers = dict(getattr(exc, "headers", None) or {})
    view = context.get("view")
    if isinstance(exc, exceptions.MethodNotAllowed) and view is not None:
        # A method the view has no handler for (TRACE): a 405 must say what is allowed
        # (RFC 9110), also on a view that leaves Allow out of its other answers.
        headers.setdefault("Allow", ", ".join(view.allowed_methods))
    if auth_header := getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = auth_header
    if (wait := getattr(exc, "wait", None)) is not None:
        headers["Retry-After"] = str(max(1, math.ceil(wait)))
    set_rollback()
    # The browsable API (a browser asking for HTML) renders the same document as a page.
    wants_html = getattr(context.get("request"), "accepted_media_type", "") == "text/html"
    return Response(
        problem_for_exception(exc),
        status=exc.status_code,
        headers=headers,
        content_type=None if wants_html else PROBLEM_CONTENT_TYPE,
    )
