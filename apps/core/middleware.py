"""Make every answer on an API path a problem+json document, whatever produced it."""

import logging
import re
import uuid

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpResponse
from rest_framework.response import Response

from apps.core.db_errors import database_unavailable
from apps.core.problems import PROBLEM_CONTENT_TYPE, problem_response

logger = logging.getLogger("flowsite.errors")
HTML_API_PAGES = ("/api/docs/", "/api/redoc/")
API_PATHS = frozenset({"/healthz", "/readyz"})
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")
# C0 controls, DEL and C1 controls: no resource is named with them, and PostgreSQL refuses
# NUL in any text it is asked to compare (a path segment becomes a lookup).
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# PhixFlow's URLs as printed, /<instance>/api/1/…, whatever the instance segment: never a
# page of the admin, and a caller with the wrong segment is told the right one.
PHIXFLOW_PATH = re.compile(r"/[^/]+/api/1/")


def _instance_prefix() -> str:
    instance = settings.FLOWSITE_PHIXFLOW_INSTANCE
    return f"/{instance}/api/" if instance else ""


def is_api_path(path: str) -> bool:
    if path in API_PATHS:
        return True
    if path.startswith("/api/"):
        return not path.startswith(HTML_API_PAGES)
    prefix = _instance_prefix()
    return bool(prefix and path.startswith(prefix)) or bool(PHIXFLOW_PATH.match(path))


# Flowsite's own pages (the admin, the API's documentation and browsable pages): scripts,
# styles, images and calls from this origin only; inline styles allowed (Django's admin
# writes style attributes), inline scripts not. Redoc runs its search in a blob: worker.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


class ContentSecurityPolicyMiddleware:
    """Every HTML page Flowsite renders gets CONTENT_SECURITY_POLICY, so that markup which
    slipped past escaping cannot run a script on Flowsite's origin. A page that set its own
    policy keeps it (a flow's answer is sent with `sandbox`); JSON is not rendered by a
    browser, and its hot paths pay nothing for this."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" not in response and response.get(
            "Content-Type", ""
        ).startswith("text/html"):
            response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response


class ApiProblemMiddleware:
    """Problem documents for API paths, outside what DRF's exception handler sees.

    - answers a path holding a control character (%00 and the like) with 404, before any
      view turns it into a query;
    - refuses a declared body over FLOWSITE_MAX_BODY_BYTES with 413 before anything reads
      it, a chunked body (which Django would read as empty) with 411, and a compressed one
      (which nothing decodes) with 415;
    - turns Django's own 4xx pages (unknown URL, 405, suspicious request) into problems,
      even with DEBUG on;
    - turns an unexpected exception into a 500 problem carrying an error id that is
      logged with the traceback; the client never sees the traceback.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "OPTIONS" and request.path_info.startswith(HTML_API_PAGES):
            # The documentation pages render only their template: DRF's OPTIONS answer
            # (data) has none to render with, which is a 500.
            return HttpResponse(headers={"Allow": "GET, HEAD, OPTIONS"})
        if not is_api_path(request.path_info):
            return self.get_response(request)
        if control := CONTROL_CHARACTER.search(request.path_info):
            # Nothing has such a path (404, as for any unknown path), and a view would
            # otherwise look it up: PostgreSQL refuses a NUL in a query (a 500).
            return problem_response(
                404,
                f"Nothing is found at this path: it holds a control character "
                f"(U+{ord(control.group()):04X}) at character {control.start()} once "
                "percent-decoded, and no resource has one in its path. Remove it.",
            )
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            # Django reads a body only up to Content-Length: a chunked body would be
            # silently taken as empty. Refuse it rather than lose it.
            return problem_response(
                411,
                "Send the request body with a Content-Length header; chunked request "
                "bodies are not supported.",
            )
        encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip()
        has_body = request.META.get("CONTENT_LENGTH") not in (None, "", "0")
        if encoding and encoding.lower() != "identity" and has_body:
            # Nothing here decodes a compressed body: read as it came, it would be reported
            # as malformed JSON, or reach a flow as bytes it cannot read (RFC 9110 §15.5.16).
            return problem_response(
                415,
                f"The request body is sent with Content-Encoding: {encoding}, which Flowsite "
                "does not decode. Send it uncompressed, without a Content-Encoding header.",
                headers={"Accept-Encoding": "identity"},
            )
        limit = settings.FLOWSITE_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return problem_response(400, "The Content-Length header is not a number.")
        if length > limit:
            return problem_response(
                413,
                f"The request body ({length} bytes) exceeds the limit of {limit} bytes "
                "(FLOWSITE_MAX_BODY_BYTES).",
                code="payload-too-large",
                limit=limit,
            )
        response = self.get_response(request)
        if response.status_code < 400 and response.get("Content-Type", "").startswith(
            PROBLEM_CONTENT_TYPE
        ):
            # A client that accepts only problems (ProblemJSONRenderer) gets its successes
            # as what they are: JSON, not problem documents.
            response["Content-Type"] = "application/json"
        # DRF's exception handler has made its errors problems already (rendered as a page
        # for the browsable API); everything else on an API path is converted here.
        if response.status_code < 400 or isinstance(response, Response):
            return response
        if getattr(response, "flow_answer", False):  # a flow's own answer, sent as it set it
            return response
        if response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE):
            return response
        return self._as_problem(request, response)

    def process_exception(self, request, exception):
        if not is_api_path(request.path_info):
            return None
        if isinstance(exception, Http404):
            return self._not_found(request)
        if isinstance(exception, PermissionDenied):
            return problem_response(403, "You do not have permission to do this.")
        if isinstance(exception, RequestDataTooBig):
            return problem_response(413, str(exception), code="payload-too-large")
        if isinstance(exception, SuspiciousOperation):
            return problem_response(400, str(exception) or "The request was refused.")
        error_id = uuid.uuid4().hex
        if database_unavailable(exception):
            # Read-only, full or locked, unreachable: the operator's to fix, the caller's
            # to retry (as for the broker, 503). Its reason says it all: no traceback.
            logger.warning(
                "Database unavailable %s on %s %s: %s",
                error_id,
                request.method,
                request.path,
                (str(exception).strip().splitlines() or [type(exception).__name__])[0],
            )
            return problem_response(
                503,
                "The database cannot be written or reached now, so this request could not be "
                "recorded. If it called a flow, the flow may have run: check before you "
                f"retry. Quote error id {error_id} to the operator; the reason is in the "
                "server log.",
                code="database-unavailable",
                headers={"Retry-After": "5"},
                errorId=error_id,
            )
        logger.error(
            "Unhandled error %s on %s %s",
            error_id,
            request.method,
            request.path,
            exc_info=exception,
        )
        return problem_response(
            500,
            f"An unexpected error occurred. Quote error id {error_id} to the operator; "
            "it is in the server log with the details.",
            code="internal-error",
            errorId=error_id,
        )

    def _not_found(self, request):
        detail = f"Nothing is found at {request.path}."
        prefix = _instance_prefix()
        path = request.path_info
        if PHIXFLOW_PATH.match(path) and not (prefix and path.startswith(prefix)):
            where = (
                f"/api/1/action/… and {prefix}1/action/…"
                if prefix
                else "/api/1/action/… (without an instance segment: "
                "FLOWSITE_PHIXFLOW_INSTANCE is empty)"
            )
            detail += f" PhixFlow's URLs are served at {where}."
        return problem_response(404, detail)

    def _as_problem(self, request, response):
        if response.status_code == 404:
            converted = self._not_found(request)
        else:
            converted = problem_response(
                response.status_code,
                f"The request to {request.method} {request.path} was refused.",
            )
            if response.status_code == 405:
                converted = problem_response(
                    405,
                    f"{request.method} is not allowed here. Allowed: {response.get('Allow', '')}.",
                )
        for header in KEPT_HEADERS:
            if header in response:
                converted[header] = response[header]
        return converted
