"""OpenAPI pieces shared by every endpoint: the problem document and the key scheme."""

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

from apps.core.problems import PROBLEM_CONTENT_TYPE, problem

ProblemSerializer = inline_serializer(
    name="Problem",
    fields={
        "type": serializers.CharField(help_text="urn:flowsite:problem:<code>"),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(),
        "detail": serializers.CharField(help_text="What went wrong and what to fix."),
        "errors": serializers.ListField(
            child=serializers.DictField(),
            required=False,
            help_text="Validation errors: [{pointer, detail}] per field.",
        ),
    },
)

PROBLEM_EXAMPLES = {
    400: problem(
        400,
        "The request has invalid fields: name.",
        code="invalid",
        errors=[{"pointer": "#/name", "detail": "This field is required."}],
    ),
    401: problem(
        401,
        "Invalid API key: it is unknown, malformed, expired or revoked.",
        code="authentication-failed",
    ),
    403: problem(
        403,
        "Your account lacks the privilege 'run_flows'. Ask an administrator to grant it "
        "through a role.",
        code="missing-privilege",
        privilege="run_flows",
    ),
    404: problem(404, "Not found.", code="not-found"),
    409: problem(409, "The request conflicts with the current state.", code="conflict"),
    412: problem(
        412,
        'The flow changed since you read it (its ETag is now "9b2f0c1d2e3a4b5c6d7e"): GET '
        "it again, reapply your change and send the new ETag in If-Match.",
        code="precondition-failed",
    ),
    413: problem(
        413,
        "The request body exceeds the limit of 10485760 bytes (FLOWSITE_MAX_BODY_BYTES).",
        code="payload-too-large",
    ),
    415: problem(
        415, 'Unsupported media type "text/plain" in request.', code="unsupported-media-type"
    ),
    429: problem(429, "Request was throttled. Expected available in 12 seconds.", code="throttled"),
}


def problem_responses(*statuses: int) -> dict[tuple[int, str], OpenApiResponse]:
    """`responses=` entries for the given error statuses, each with an example."""
    return {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(
            response=ProblemSerializer,
            description=PROBLEM_EXAMPLES[status]["title"],
            examples=[
                OpenApiExample(
                    PROBLEM_EXAMPLES[status]["title"],
                    value=PROBLEM_EXAMPLES[status],
                    response_only=True,
                    status_codes=[str(status)],
                    media_type=PROBLEM_CONTENT_TYPE,
                )
            ],
        )
        for status in statuses
    }


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "fs_<43 url-safe characters>",
            "description": "An API key of an account holding `use_api_key`. PhixFlow's bare "
            "`Authorization: <key>` is accepted too.",
        }


class RegularSessionScheme(SessionScheme):
    target_class = "apps.accounts.authentication.RegularSessionAuthentication"
