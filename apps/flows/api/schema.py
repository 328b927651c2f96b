"""OpenAPI descriptions of the management API, with examples from the seeds and DESIGN §3."""

from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
)

from apps.core.openapi import crud_schema, problem_responses
from apps.flows.documents import Document

STAMPS = {"lastModified": "2017-08-19T17:04:54.005Z", "createdAt": "2017-08-01T20:43:42.156Z"}
EXAMPLES = {
    "integration": {"_id": "3", "name": "MyApp", "description": ""},
    "connection": {
        "_id": "4",
        "name": "CRM",
        "type": "http",
        "http": {
            "baseURI": "https://crm.example.com/api",
            "headers": {},
            "auth": {
                "type": "bearer",
                "token": "write-only: accepted, never returned",
                "username": "",
                "headerName": "X-API-Key",
                "tokenURL": "",
                "clientId": "",
                "scope": "",
            },
            "allowedPrivateHosts": [],
            "timeout": None,
        },
    },
    "export": {
        "_id": "7",
        "name": "Open leads",
        "_integrationId": "3",
        "_connectionId": "4",
        "http": {
            "method": "GET",
            "relativeURI": "/leads?status={{variables.status}}",
            "query": {},
            "headers": {},
            "body": None,
            "response": {"resourcePath": "data"},
            "paging": {
                "method": "nextlink",
                "pageSize": None,
                "pageSizeParam": "pageSize",
                "pageParam": "page",
                "path": "links.next",
                "cursorParam": "cursor",
                "maxPages": 10000,
            },
        },
    },
    "import": {
        "_id": "8",
        "name": "Post lead",
        "_integrationId": "3",
        "_connectionId": "4",
        "http": {
            "method": "POST",
            "relativeURI": "/leads",
            "headers": {},
            "body": None,
            "batchSize": 1,
        },
    },
    "script": {
        "_id": "9",
        "name": "prepareResponse",
        "_integrationId": "3",
        "language": "javascript",
        "content": "function main(ctx) { return {statusCode: 200, result: 'Hello ' + "
        "ctx.trigger.args.request.query.name} }",
    },
    "flow": {
        "_id": "12",
        "name": "Update Usage Stats for all Trialers",
        "description": "",
        "disabled": False,
        "_integrationId": "3",
        "schedule": "? 0 2 ? * *",
        "timezone": "America/Los_Angeles",
        "skipRetries": False,
        "captureForTests": False,
        "runTestsOnSave": False,
        "pageGenerators": [{"_exportId": "7"}],
        "pageProcessors": [
            {
                "type": "export",
                "_exportId": "10",
                "responseMapping": {
                    "lists": [],
                    "fields": [{"extract": "data", "generate": "numFlows"}],
                },
            },
            {"type": "import", "_importId": "8", "proceedOnFailure": True},
        ],
        "api": {},
        "variables": {"greeting": "Hello"},
        "maxConcurrency": 0,
        "concurrencyPolicy": "queue",
        "runTimeout": 3600000,
        "isTemplate": False,
        "_templateFlowId": None,
        "connectionMap": {},
    },
}


def _example(document: Document) -> dict:
    return {**EXAMPLES[document.name], **STAMPS}


def _request_example(document: Document) -> dict:
    return {k: v for k, v in EXAMPLES[document.name].items() if k != "_id"}


def resource_schema(document: Document, tag: str):
    """extend_schema_view for a ResourceViewSet: every CRUD operation with examples."""
    return crud_schema(
        name=document.name,
        tag=tag,
        schema=document.schema(),
        example=_example(document),
        request_example=_request_example(document),
        delete_summary=f"Delete a {document.name} (409 while flows use it)",
    )


REF = {
    "type": "object",
    "properties": {"_id": {"type": "string"}, "name": {"type": "string"}},
}
REFS = {"type": "array", "items": REF}
FLOW_EXAMPLE = {**EXAMPLES["flow"], **STAMPS}


def _flow_response(status: int, *problems: int) -> dict:
    from apps.flows.documents import FLOW

    return {status: FLOW.schema(), **problem_responses(*problems)}


clone_schema = extend_schema(
    tags=["flows"],
    summary="Clone a flow with copies of its exports, imports and scripts",
    description="Every connection the flow uses must be mapped (400 lists the unmapped). "
    "The clone is disabled; its API is switched off when another flow answers its route. "
    "Its _sourceId is the flow cloned. Celigo's body is accepted as printed: "
    "_flowGroupingId is kept on the clone; sandbox must be false (there is no sandbox).",
    request={
        "application/json": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "connectionMap": {"type": "object", "additionalProperties": {"type": "string"}},
                "name": {"type": "string"},
                "_integrationId": {"type": "string"},
                "_flowGroupingId": {"type": "string"},
                "sandbox": {
                    "type": "boolean",
                    "description": "Celigo's; only false (or left out): there is no sandbox.",
                },
            },
        }
    },
    responses=_flow_response(201, 400, 401, 403, 404, 429),
    examples=[
        OpenApiExample(
            "Clone",
            value={"connectionMap": {"4": "5"}, "name": "Usage stats (EU)", "_integrationId": "3"},
            request_only=True,
        ),
        OpenApiExample(
            "Clone", value={**FLOW_EXAMPLE, "_id": "13", "disabled": True}, response_only=True
        ),
    ],
)

BUNDLE_SCHEMA = {
    "type": "object",
    # Required, so that a {signedURL} answer matches only one of the download's oneOf.
    "required": ["version", "_flowId", "flows"],
    "properties": {
        "version": {"type": "integer"},
        "_flowId": {"type": "string"},
        "flows": {"type": "array", "items": {"type": "object"}},
        "exports": {"type": "array", "items": {"type": "object"}},
        "imports": {"type": "array", "items": {"type": "object"}},
        "scripts": {"type": "array", "items": {"type": "object"}},
        "connections": {"type": "array", "items": {"type": "object"}},
        "tests": {
            "type": "array",
            "items": {"type": "object"},
            "description": "The flows' tests: name, expected outcome, ignored fields, relaxed "
            "request parts and recording (secret-looking fields redacted).",
        },
    },
}
BUNDLE_EXAMPLE = {
    "version": 1,
    "_flowId": "12",
    "flows": [FLOW_EXAMPLE],
    "exports": [{**EXAMPLES["export"], **STAMPS}],
    "imports": [{**EXAMPLES["import"], **STAMPS}],
    "scripts": [],
    "connections": [
        {
            "_id": "4",
            "name": "CRM",
            "type": "http",
            "http": {"baseURI": "https://crm.example.com/api", "auth": {"type": "bearer"}},
        }
    ],
}

SIGNED_URL_SCHEMA = {
    "type": "object",
    "required": ["signedURL"],
    "properties": {
        "signedURL": {
            "type": "string",
            "format": "uri",
            "description": "Serves this download without an Authorization header for "
            "FLOWSITE_SIGNED_URL_TTL_SECONDS (300), while the key that asked may download it.",
        }
    },
}
FORCE_PARAMETER = OpenApiParameter(
    "force",
    bool,
    description="true: save even though the flow's tests fail while its runTestsOnSave guard "
    "is on (without it such a change is a 400 `flow-tests-failed` naming the failing tests).",
)
SIGNED_URL_PARAMETERS = [
    OpenApiParameter(
        "signedURL",
        bool,
        description="true: answer {signedURL} (Celigo's pre-signed URL) instead of the bundle.",
    ),
    OpenApiParameter(
        "signature",
        str,
        description="Set by a signedURL: the URL's signature (no Authorization header is "
        "needed with it). Expired, changed, or made by a key revoked since: 403.",
    ),
]
SIGNED_URL_DESCRIPTION = (
    'With `?signedURL=true` the answer is `{"signedURL": …}`: a URL that serves this one '
    "download without an Authorization header for FLOWSITE_SIGNED_URL_TTL_SECONDS (300). "
    "It is checked on every use against the API key that asked for it: once that key is "
    "revoked, expired or deleted, or its account lost the privilege, the URL answers 403; "
    "so does an expired or changed one."
)


def _download_schema(*, tag: str, summary: str, bundle: dict, example: dict, signed: str):
    return extend_schema(
        tags=[tag],
        summary=summary,
        description=SIGNED_URL_DESCRIPTION,
        parameters=SIGNED_URL_PARAMETERS,
        request=None,  # a flow's template is also POSTed, with no body, as Celigo prints it
        responses={
            200: {"oneOf": [bundle, SIGNED_URL_SCHEMA]},
            **problem_responses(400, 401, 403, 404, 429),
        },
        examples=[
            OpenApiExample("Bundle", value=example, response_only=True),
            OpenApiExample(
                "Signed URL (?signedURL=true)",
                value={
                    "signedURL": f"https://flowsite.example.com{signed}?signature=eyJwYXRoIjoi…"
                },
                response_only=True,
            ),
        ],
    )


download_schema = _download_schema(
    tag="flows",
    summary="Download the flow as a self-contained bundle (no secrets), or a signed URL",
    bundle=BUNDLE_SCHEMA,
    example=BUNDLE_EXAMPLE,
    signed="/api/v1/flows/12/download",
)

import_schema = extend_schema(
    tags=["flows"],
    summary="Install a downloaded bundle into an integration",
    description="Creates new exports, imports, scripts and flows (disabled), with the "
    "bundle's connections mapped to yours. Answers the main flow.",
    request={
        "application/json": {
            "type": "object",
            "required": ["bundle", "_integrationId"],
            "additionalProperties": False,
            "properties": {
                "bundle": BUNDLE_SCHEMA,
                "connectionMap": {"type": "object", "additionalProperties": {"type": "string"}},
                "_integrationId": {"type": "string"},
                "name": {"type": "string"},
            },
        }
    },
    responses=_flow_response(201, 400, 401, 403, 413, 429),
    examples=[
        OpenApiExample(
            "Install",
            value={"bundle": BUNDLE_EXAMPLE, "connectionMap": {"4": "6"}, "_integrationId": "5"},
            request_only=True,
        ),
        OpenApiExample(
            "Installed",
            value={**FLOW_EXAMPLE, "_id": "20", "_integrationId": "5", "disabled": True},
            response_only=True,
        ),
    ],
)


INTEGRATION_BUNDLE_SCHEMA = {
    "type": "object",
    "required": ["version", "integration"],
    "properties": {
        "version": {"type": "integer"},
        "_integrationId": {"type": "string"},
        "integration": {"type": "object", "additionalProperties": {}},
        **{
            kind: {"type": "array", "items": {"type": "object", "additionalProperties": {}}}
            for kind in ("flows", "exports", "imports", "scripts", "connections", "tests")
        },
    },
}
INTEGRATION_BUNDLE_EXAMPLE = {
    "version": 1,
    "_integrationId": "3",
    "integration": {**EXAMPLES["integration"], "_errorFlowId": None, **STAMPS},
    "flows": [FLOW_EXAMPLE],
    "exports": [
        {**EXAMPLES["export"], **STAMPS},
        {**EXAMPLES["export"], "_id": "10", "name": "Stats", **STAMPS},
    ],
    "imports": [{**EXAMPLES["import"], **STAMPS}],
    "scripts": [],
    "connections": [
        {
            **{k: v for k, v in EXAMPLES["connection"].items() if k != "http"},
            "http": {
                **EXAMPLES["connection"]["http"],
                "auth": {
                    k: v for k, v in EXAMPLES["connection"]["http"]["auth"].items() if k != "token"
                },
                "concurrencyLevel": 1,
            },
            **STAMPS,
        }
    ],
}
integration_download_schema = _download_schema(
    tag="integrations",
    summary="Download the whole integration as one bundle (no secrets), or a signed URL",
    bundle=INTEGRATION_BUNDLE_SCHEMA,
    example=INTEGRATION_BUNDLE_EXAMPLE,
    signed="/api/v1/integrations/3/download",
)
IMPORT_REPORT_EXAMPLE = {
    "integration": {
        **EXAMPLES["integration"],
        "_id": "21",
        "_errorFlowId": None,
        **STAMPS,
    },
    "ids": {
        "exports": {"7": "40", "10": "41"},
        "imports": {"8": "42"},
        "scripts": {},
        "flows": {"12": "43"},
        "connections": {"4": "44"},
    },
    "connections": [
        {
            "_id": "44",
            "name": "CRM",
            "_sourceId": "4",
            "status": "created",
            "missingSecrets": ["http.auth.token"],
        }
    ],
}
integration_import_schema = extend_schema(
    tags=["integrations"],
    summary="Create an integration again from its downloaded bundle",
    description="All or nothing: a new integration (the bundle's name, or `name`; `(2)` "
    "is added when taken) with new flows (disabled until you enable them), exports, "
    "imports and scripts, every reference rewired to the new ids. Each connection of the "
    "bundle is mapped (`connectionMap`: bundle's id → one of yours), else matched (one here "
    "with the same name, type and base URI), else created from its document without "
    "secrets: `missingSecrets` names those to set (PATCH /api/v1/connections/<id>) before "
    "its flows can call it. A bad bundle is a 400 naming what is wrong; nothing is created.",
    request={
        "application/json": {
            "type": "object",
            "required": ["bundle"],
            "additionalProperties": False,
            "properties": {
                "bundle": INTEGRATION_BUNDLE_SCHEMA,
                "connectionMap": {"type": "object", "additionalProperties": {"type": "string"}},
                "name": {"type": "string"},
            },
        }
    },
    responses={
        201: {
            "type": "object",
            "properties": {
                "integration": {"type": "object", "additionalProperties": {}},
                "ids": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                    },
                },
                "connections": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "_id": {"type": "string"},
                            "name": {"type": "string"},
                            "_sourceId": {"type": "string"},
                            "status": {"type": "string", "enum": ["mapped", "matched", "created"]},
                            "missingSecrets": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                },
            },
        },
        **problem_responses(400, 401, 403, 413, 429),
    },
    examples=[
        OpenApiExample(
            "Import",
            value={"bundle": INTEGRATION_BUNDLE_EXAMPLE, "name": "MyApp (staging)"},
            request_only=True,
        ),
        OpenApiExample("Imported", value=IMPORT_REPORT_EXAMPLE, response_only=True),
    ],
)

replace_connection_schema = extend_schema(
    tags=["flows"],
    summary="Point the flow's exports and imports at another connection",
    description="Jobs already running keep the connection they started with. A flow whose "
    "runTestsOnSave guard is on is replayed against its tests with the new connection first.",
    parameters=[FORCE_PARAMETER],
    request={
        "application/json": {
            "type": "object",
            "required": ["_connectionId", "_newConnectionId"],
            "additionalProperties": False,
            "properties": {
                "_connectionId": {"type": "string"},
                "_newConnectionId": {"type": "string"},
            },
        }
    },
    responses={
        200: {
            "type": "object",
            "properties": {
                "_flowId": {"type": "string"},
                "_connectionId": {"type": "string"},
                "_newConnectionId": {"type": "string"},
                "exports": {"type": "array", "items": {"type": "string"}},
                "imports": {"type": "array", "items": {"type": "string"}},
            },
        },
        **problem_responses(400, 401, 403, 404, 429),
    },
    examples=[
        OpenApiExample(
            "Replace", value={"_connectionId": "4", "_newConnectionId": "5"}, request_only=True
        ),
        OpenApiExample(
            "Replaced",
            value={
                "_flowId": "12",
                "_connectionId": "4",
                "_newConnectionId": "5",
                "exports": ["7", "10"],
                "imports": ["8"],
            },
            response_only=True,
        ),
    ],
)

AUDIT_ENTRY = {
    "_id": "31",
    "time": "2026-11-22T09:15:02.412Z",
    "action": "changed",
    "user": "ci-bot",
    "changes": [{"field": "schedule", "oldValue": "? 0 2 ? * *", "newValue": "0 3 * * *"}],
    "reason": None,
}
audit_schema = extend_schema(
    tags=["flows"],
    summary="Who changed the flow, when, and which fields (newest first)",
    responses={
        200: {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "_id": {"type": "string"},
                    "time": {"type": "string", "format": "date-time"},
                    "action": {"type": "string", "enum": ["created", "changed", "deleted"]},
                    "user": {"type": "string", "nullable": True},
                    "changes": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "field": {"type": "string"},
                                "oldValue": {},
                                "newValue": {},
                            },
                        },
                    },
                    "reason": {
                        "type": "string",
                        "nullable": True,
                        "description": "What made the change when no field of the flow "
                        "says it, e.g. replaceConnection: connection 3 → 4 (exports 5; "
                        "imports 6).",
                    },
                },
            },
        },
        **problem_responses(401, 403, 404, 429),
    },
    examples=[OpenApiExample("Audit", value=[AUDIT_ENTRY], response_only=True)],
)


dependencies_schema = extend_schema(
    tags=["flows"],
    summary="The resources the flow uses, and the flows using it",
    responses={
        200: {
            "type": "object",
            "properties": {
                "uses": {
                    "type": "object",
                    "properties": {
                        kind: REFS
                        for kind in (
                            "integrations",
                            "connections",
                            "exports",
                            "imports",
                            "scripts",
                            "flows",
                        )
                    },
                },
                "usedBy": {"type": "object", "properties": {"flows": REFS}},
            },
        },
        **problem_responses(401, 403, 404, 429),
    },
    examples=[
        OpenApiExample(
            "Dependencies",
            value={
                "uses": {
                    "integrations": [{"_id": "3", "name": "MyApp"}],
                    "connections": [{"_id": "4", "name": "CRM"}],
                    "exports": [{"_id": "7", "name": "Open leads"}],
                    "imports": [{"_id": "8", "name": "Post lead"}],
                    "scripts": [],
                    "flows": [],
                },
                "usedBy": {"flows": [{"_id": "14", "name": "Nightly sync"}]},
            },
            response_only=True,
        )
    ],
)


# --- Templates and instances (Axway's formulas and formula instances) ---------------------

INSTANCE_EXAMPLE = {
    **FLOW_EXAMPLE,
    "_id": "417240",
    "name": "Simple FaaR instance",
    "schedule": "",
    "pageGenerators": [],
    "pageProcessors": [{"type": "script", "_scriptId": "9"}],
    "api": {"enabled": True, "method": "GET", "path": "/greeting", "mode": "sync"},
    "variables": {"greeting": "Hello"},
    "_templateFlowId": "12",
    "connectionMap": {"4": "5"},
}
instances_schema = extend_schema(
    methods=["POST"],
    tags=["flows"],
    summary="Create an instance of a template (Axway's formula instance)",
    description="The template (isTemplate: true) never answers calls itself. Its instance "
    "is a new flow in the template's integration with the template's steps and API, "
    "enabled, and its own name, variables (over the template's) and connections: "
    "connectionMap maps a connection the template uses to the instance's (one of the same "
    "type; a connection left out stays the template's). Several instances share the "
    "template's API path; a call names one with the header Elements-Formula-Instance-Id.",
    request={
        "application/json": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "variables": {"type": "object", "additionalProperties": {}},
                "connectionMap": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        }
    },
    responses=_flow_response(201, 400, 401, 403, 404, 409, 429),
    examples=[
        OpenApiExample(
            "Instance",
            value={
                "name": "Simple FaaR instance",
                "variables": {"greeting": "Hello"},
                "connectionMap": {"4": "5"},
            },
            request_only=True,
        ),
        OpenApiExample("Instance", value=INSTANCE_EXAMPLE, response_only=True),
    ],
)
list_instances_schema = extend_schema(
    methods=["GET"],
    tags=["flows"],
    summary="List a template's instances",
    responses={
        **(listed := _flow_response(200, 401, 403, 404, 429)),
        200: {"type": "array", "items": listed[200]},
    },
    examples=[OpenApiExample("Instances", value=[INSTANCE_EXAMPLE], response_only=True)],
)
update_from_template_schema = extend_schema(
    tags=["flows"],
    summary="Update an instance from its template",
    description="Copies the template's steps, API, schedule and settings again. The "
    "instance keeps its own name, variables (the template's new ones are added), secret "
    "variables, connection map, disabled flag, allowAnonymous and roles. No body. An "
    "instance whose runTestsOnSave guard is on is replayed against its tests as updated "
    "first.",
    parameters=[FORCE_PARAMETER],
    request=None,
    responses=_flow_response(200, 400, 401, 403, 404, 409, 429),
    examples=[OpenApiExample("Updated", value=INSTANCE_EXAMPLE, response_only=True)],
)
