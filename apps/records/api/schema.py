"""OpenAPI of the surface-admin resources (recordTypes, records, operations, views): every
CRUD operation with request and response examples, as the flows' resources have."""

from typing import Any

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)

from apps.core.openapi import problem_responses
from apps.flows.api.schema import JSON_PATCH_SCHEMA, STAMPS

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
    partial_update (merge patch 200 or JSON Patch 204) and destroy, each with examples."""
    if request_example is None:
        request_example = {k: v for k, v in example.items() if k not in READ_ONLY}
    merge_example = merge_example or {"name": "Renamed"}
    first_key = next(iter(merge_example))
    body = OpenApiExample(name.capitalize(), value=request_example, request_only=True)
    answer = OpenApiExample(name.capitalize(), value=example, response_only=True)
    return extend_schema_view(
        list=extend_schema(
            tags=[tag],
            summary=f"List {tag}",
            description=list_description,
            responses={200: schema, **problem_responses(400, 401, 403, 429)},
            examples=[OpenApiExample(tag, value=[example], response_only=True)],
        ),
        retrieve=extend_schema(
            tags=[tag],
            summary=f"Get a {name}",
            responses={200: schema, **problem_responses(401, 403, 404, 429)},
            examples=[answer],
        ),
        create=extend_schema(
            tags=[tag],
            summary=f"Create a {name}",
            request={"application/json": schema},
            responses={201: schema, **problem_responses(400, 401, 403, 413, 415, 429)},
            examples=[body, answer],
        ),
        update=extend_schema(
            tags=[tag],
            summary=f"Replace a {name} (fields left out take their defaults)",
            parameters=[IF_MATCH],
            request={"application/json": schema},
            responses={200: schema, **problem_responses(400, 401, 403, 404, 412, 413, 415, 429)},
            examples=[body, answer],
        ),
        partial_update=extend_schema(
            tags=[tag],
            summary=f"Change a {name}: JSON merge patch (200) or JSON Patch (204)",
            description="The patch is applied to the current document, which then replaces "
            "the resource as a PUT would.",
            parameters=[IF_MATCH],
            request={
                "application/json": {**schema, "description": "RFC 7386 merge patch"},
                "application/merge-patch+json": {**schema, "description": "RFC 7386"},
                "application/json-patch+json": JSON_PATCH_SCHEMA,
            },
            responses={
                200: schema,
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


# --- Documents ------------------------------------------------------------------------

FIELD_TYPES = [
    "text",
    "long text",
    "number",
    "integer",
    "boolean",
    "date",
    "datetime",
    "choice",
    "multi-choice",
    "email",
    "url",
    "json",
]

RECORD_TYPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "_id": {"type": "string", "readOnly": True},
        "name": {"type": "string", "description": "Unique within the integration."},
        "_integrationId": {
            "oneOf": [{"type": "string"}, {"type": "integer"}],
            "description": "The integration (application) the table belongs to.",
        },
        "description": {"type": "string"},
        "fields": {
            "type": "array",
            "description": "Replaced as a whole: fields are matched by name, so the values "
            "of a field that stays are kept.",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "type": {"type": "string", "enum": FIELD_TYPES, "default": "text"},
                    "required": {"type": "boolean", "default": False},
                    "choices": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "choice and multi-choice fields: the allowed values.",
                    },
                    "default": {"description": "Given to new records without a value."},
                },
            },
        },
        "lastModified": {"type": "string", "format": "date-time", "readOnly": True},
        "createdAt": {"type": "string", "format": "date-time", "readOnly": True},
    },
}
RECORD_TYPE_EXAMPLE = {
    "_id": "21",
    "name": "Lead",
    "_integrationId": "3",
    "description": "Leads registered by partners.",
    "fields": [
        {"name": "Company", "type": "text", "required": True},
        {"name": "Rating", "type": "choice", "required": False, "choices": ["Hot", "Warm", "Cold"]},
        {"name": "Employees", "type": "integer", "required": False, "default": 1},
    ],
    **STAMPS,
}

RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The system fields, then a value per field of the record type, by field "
    'name (choices as {"Selection": …}; null when the record has none).',
    "properties": {
        "_recordTypeId": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "RecordID": {"type": "integer", "readOnly": True},
        "CreatedBy": {"type": "string", "nullable": True, "readOnly": True},
        "CreatedOn": {"type": "string", "format": "date-time", "readOnly": True},
        "ModifiedBy": {"type": "string", "nullable": True, "readOnly": True},
        "ModifiedOn": {"type": "string", "format": "date-time", "readOnly": True},
        "SubmissionId": {"type": "integer", "readOnly": True},
    },
    "additionalProperties": {},
}
RECORD_EXAMPLE = {
    "_recordTypeId": "21",
    "RecordID": 17,
    "CreatedBy": "builder",
    "CreatedOn": "2024-05-01T09:30:00.000Z",
    "ModifiedBy": "builder",
    "ModifiedOn": "2024-05-01T09:30:00.000Z",
    "SubmissionId": 41,
    "Company": "Acme",
    "Rating": {"Selection": "Warm"},
    "Employees": 120,
}
RECORD_REQUEST_EXAMPLE = {
    "_recordTypeId": "21",
    "Company": "Acme",
    "Rating": "Warm",
    "Employees": 120,
}
