"""OpenAPI pieces shared by every endpoint: the problem document and the key scheme."""

import html
import re

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
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
    422: problem(
        422,
        "This Idempotency-Key was already used with a different request; use a new key for a "
        "new request.",
        code="idempotency-key-reused",
    ),
    429: problem(429, "Request was throttled. Expected available in 12 seconds.", code="throttled"),
}


def builders_text(text: str) -> str:
    """A builder's text (a description, a name) in an OpenAPI description, which the docs
    render as Markdown with its HTML: the HTML shown as text (an outside probe put a
    password form on /api/redoc/ through a flow's description)."""
    return html.escape(text, quote=False)


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


# --- Named schemas ----------------------------------------------------------------------

# The management API's documents as named components: one model per resource in generated
# clients (Flow, FlowRequest), not one inline copy per operation and media type, whose
# generated names collide. Filled as the views are decorated; `add_components` puts the
# ones the served operations use into the schema.
COMPONENTS: dict[str, dict] = {}


def component(name: str, schema: dict) -> dict:
    """A reference to `schema`, registered as components/schemas/<name>."""
    COMPONENTS[name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


def writable(schema: dict) -> dict:
    """What a client sends of a document: its read-only members left out."""
    if not isinstance(schema.get("properties"), dict):
        return schema
    return {
        **schema,
        "properties": {
            name: writable(member)
            for name, member in schema["properties"].items()
            if not member.get("readOnly")
        },
    }


def nullable(schema: dict) -> dict:
    """`schema` that also takes null. An enum must list null itself (OpenAPI 3.0.3:
    `nullable` does not widen `enum`), or validators and fuzzers call null invalid."""
    result = {**schema, "nullable": True}
    if "enum" in result and None not in result["enum"]:
        result["enum"] = [*result["enum"], None]
    return result


def merge_patch(schema: dict) -> dict:
    """A JSON merge patch (RFC 7386) of a document: only what changes, so nothing is
    required, and any member may be null (null removes it: it takes its default)."""
    if not isinstance(schema.get("properties"), dict):
        return schema
    return {
        **{key: value for key, value in schema.items() if key != "required"},
        "properties": {
            name: nullable(merge_patch(member)) for name, member in schema["properties"].items()
        },
    }


def add_components(result, generator, request, public):
    """drf-spectacular hook: the registered components the served operations refer to, and
    the key scheme even when no operation is left (Swagger UI's Authorize needs it)."""
    components = result.setdefault("components", {})
    components.setdefault("securitySchemes", {}).setdefault("apiKey", API_KEY_SCHEME)
    schemas = components.setdefault("schemas", {})
    pending = [result.get("paths", {})]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/components/schemas/"):
                name = reference.rsplit("/", 1)[-1]
                if name in COMPONENTS and name not in schemas:
                    schemas[name] = COMPONENTS[name]
                    pending.append(COMPONENTS[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return result


def json_success_answers(result, generator, request, public):
    """drf-spectacular hook: a success answer is never a problem document.

    DRF lists every renderer of a view for each answer; the problem+json one renders only
    errors, so it is dropped from 2xx answers (a generated client would offer to parse a
    flow as a Problem)."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for code, answer in operation.get("responses", {}).items():
                content = answer.get("content") if str(code).startswith("2") else None
                if content and len(content) > 1:
                    content.pop(PROBLEM_CONTENT_TYPE, None)
    return result


JSON_PATCH = {
    "type": "array",
    "items": component(
        "JsonPatchOperation",
        {
            "type": "object",
            "required": ["op", "path"],
            "properties": {
                "op": {
                    "type": "string",
                    "enum": ["add", "remove", "replace", "move", "copy", "test"],
                },
                "path": {"type": "string"},
                "from": {"type": "string"},
                "value": {"description": "Any JSON value."},
            },
        },
    ),
}


def patch_request(request_schema: dict) -> dict:
    """`request=` of a PATCH: a JSON merge patch (as application/json too) or a JSON Patch."""
    return {
        "application/json": request_schema,
        "application/merge-patch+json": request_schema,
        "application/json-patch+json": JSON_PATCH,
    }


IF_MATCH = OpenApiParameter(
    "If-Match",
    str,
    OpenApiParameter.HEADER,
    description="Optional: the ETag you read. A changed resource answers 412.",
)
READ_ONLY = ("_id", "createdAt", "lastModified")


def crud_schema(
    *,
    name: str,
    tag: str,
    schema: dict,
    example: dict,
    request_example: dict | None = None,
    merge_example: dict | None = None,
    list_description: str = "A JSON array; the next page is in the Link header (rel=next).",
    delete_summary: str | None = None,
):
    """extend_schema_view for a resource viewset: list, retrieve, create, update,
    partial_update (merge patch 200 or JSON Patch 204) and destroy, each with examples.

    The document is the component <Name> (as answered) and <Name>Request (as sent: no
    read-only members), so generated clients get one model of each per resource."""
    if request_example is None:
        request_example = {k: v for k, v in example.items() if k not in READ_ONLY}
    merge_example = merge_example or {"name": "Renamed"}
    first_key = next(iter(merge_example))
    model = "".join(word.capitalize() if word.islower() else word for word in name.split())
    answered = component(model, schema)
    sent = component(f"{model}Request", writable(schema))
    patch = component(f"Patched{model}Request", merge_patch(writable(schema)))
    body = OpenApiExample(name.capitalize(), value=request_example, request_only=True)
    answer = OpenApiExample(name.capitalize(), value=example, response_only=True)
    return extend_schema_view(
        list=extend_schema(
            tags=[tag],
            summary=f"List {tag}",
            description=list_description,
            responses={
                (200, "application/json"): answered,
                **problem_responses(400, 401, 403, 429),
            },
            # drf-spectacular lists the example itself: a list view answers [example].
            examples=[OpenApiExample(tag, value=example, response_only=True)],
        ),
        retrieve=extend_schema(
            tags=[tag],
            summary=f"Get a {name}",
            responses={
                (200, "application/json"): answered,
                **problem_responses(401, 403, 404, 429),
            },
            examples=[answer],
        ),
        create=extend_schema(
            tags=[tag],
            summary=f"Create a {name}",
            request={"application/json": sent},
            responses={
                (201, "application/json"): answered,
                **problem_responses(400, 401, 403, 413, 415, 429),
            },
            examples=[body, answer],
        ),
        update=extend_schema(
            tags=[tag],
            summary=f"Replace a {name} (fields left out take their defaults)",
            parameters=[IF_MATCH],
            request={"application/json": sent},
            responses={
                (200, "application/json"): answered,
                **problem_responses(400, 401, 403, 404, 412, 413, 415, 429),
            },
            examples=[body, answer],
        ),
        partial_update=extend_schema(
            tags=[tag],
            summary=f"Change a {name}: JSON merge patch (200) or JSON Patch (204)",
            description="The patch is applied to the current document, which then replaces "
            "the resource as a PUT would. A JSON merge patch (RFC 7386) is sent as "
            "application/merge-patch+json or application/json; a JSON Patch (RFC 6902) as "
            "application/json-patch+json (or an array under application/json).",
            parameters=[IF_MATCH],
            request=patch_request(patch),
            responses={
                (200, "application/json"): answered,
                204: OpenApiResponse(description="JSON Patch applied; see the ETag."),
                **problem_responses(400, 401, 403, 404, 412, 413, 415, 429),
            },
            examples=[
                OpenApiExample(
                    "Merge patch",
                    value=merge_example,
                    request_only=True,
                    media_type="application/json",
                ),
                OpenApiExample(
                    "JSON Patch",
                    value=[
                        {
                            "op": "replace",
                            "path": f"/{first_key}",
                            "value": merge_example[first_key],
                        }
                    ],
                    request_only=True,
                    media_type="application/json-patch+json",
                ),
                answer,
            ],
        ),
        destroy=extend_schema(
            tags=[tag],
            summary=delete_summary or f"Delete a {name}",
            parameters=[IF_MATCH],
            responses={204: None, **problem_responses(401, 403, 404, 409, 412, 429)},
        ),
    )


API_KEY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "bearerFormat": "fs_<43 url-safe characters>",
    "description": "An API key of an account holding `use_api_key`. PhixFlow's bare "
    "`Authorization: <key>` is accepted too. The schema lists what the key may call: "
    "Swagger UI's Authorize fetches it again with the key.",
}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apps.accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return API_KEY_SCHEME


class RegularSessionScheme(SessionScheme):
    target_class = "apps.accounts.authentication.RegularSessionAuthentication"


# What each path parameter is, and an example the docs put in the URL (Swagger UI's "Try it
# out" fills it in; without one the URL read /api/1/action///poll/).
PATH_PARAMETERS = {
    "application": (
        "The application's name, as in the admin (Celigo: the integration).",
        "Lead Registration",
    ),
    "flow": ("The flow's name, as in the admin.", "greeting"),
    "process_id": (
        "The run's process id: the processId of the 202 answer.",
        "3f2c8a9e-8d4b-4f39-9a57-6f1f5e0f9d11",
    ),
    "path": ("The flow's api.path, without its first slash.", "greeting"),
    "view": ("The view's name, as in the admin.", "Leads by Rating"),
    "operation": ("The operation's name, as in the admin.", "Register Lead"),
    "id": ("The resource's _id.", "1"),
}
UUID_EXAMPLE = PATH_PARAMETERS["process_id"][1]


def describe_path_parameters(result, generator, request, public):
    """drf-spectacular hook: every path parameter gets a description and an example."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "path":
                    continue
                description, example = PATH_PARAMETERS.get(
                    parameter["name"], ("A part of the URL.", "1")
                )
                schema = parameter.get("schema", {})
                if schema.get("format") == "uuid":
                    example = UUID_EXAMPLE
                elif pattern := schema.get("pattern"):  # an example the pattern accepts
                    example = next(
                        (e for e in (example, UUID_EXAMPLE, "1") if re.search(pattern, e)), example
                    )
                parameter.setdefault("description", description)
                parameter.setdefault("example", example)
    return result
