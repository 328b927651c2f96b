"""Every API-enabled flow as operations of its own in the OpenAPI schema (a governed catalog).

`add_flow_operations` is a drf-spectacular postprocessing hook: next to the generic
trigger and resource endpoints, each flow whose `api.enabled` is on gets its trigger URL
(GET and POST) and, with an `api.path`, its resource path, documented from its settings:
mode, timeout, anonymous calls, roles, input schema (as the request body or as query
parameters) and the answers it can give.

The same pieces (`flow_endpoints`, `example_for`) build the endpoint panel of the flow's
admin page (`endpoint_panel`), so the catalog and the admin always show the same URLs and
the same example payload.
"""

import json
import math
import shlex
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils.text import slugify

from apps.core.openapi import PROBLEM_EXAMPLES, builders_text
from apps.core.problems import PROBLEM_CONTENT_TYPE, problem
from apps.flows.api_settings import INSTANCE_HEADER, FlowApi, api_errors, input_errors
from apps.flows.models import Flow

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROCESS_ID = "3f2c8a9e-8d4b-4f39-9a57-6f1f5e0f9d11"
MAX_DEPTH = 8

# --- Example payloads from a JSON Schema ------------------------------------------------

FORMAT_EXAMPLES = {
    "date-time": "2024-01-31T09:30:00Z",
    "date": "2024-01-31",
    "time": "09:30:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": PROCESS_ID,
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
}
TYPE_EXAMPLES = {"string": "string", "integer": 0, "number": 0, "boolean": True, "null": None}


def _resolve(schema: Any, root: Any) -> Any:
    """A local `$ref` (#/$defs/x, #/definitions/x) followed once; other refs are free-form."""
    reference = schema.get("$ref") if isinstance(schema, dict) else None
    if not isinstance(reference, str):
        return schema
    if not reference.startswith("#"):
        return {}
    target = root
    for part in filter(None, reference[1:].split("/")):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, dict) or part not in target:
            return {}
        target = target[part]
    return target


def example_for(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """An example value of a JSON Schema: its own examples, else type-based placeholders.

    `examples[0]`, `example`, `default`, `const` and `enum[0]` win; objects get every
    property, arrays one item. No schema (None) is a free-form object: `{}`.
    """
    if schema is None or schema is True:
        return {}
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return None
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if not isinstance(schema, dict):
        return None
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return schema["examples"][0]
    for keyword in ("example", "default", "const"):
        if keyword in schema:
            return schema[keyword]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    if "$ref" in schema:
        return example_for(_resolve(schema, root), root, depth + 1)
    for keyword in ("allOf", "anyOf", "oneOf"):
        options = [s for s in schema.get(keyword) or [] if isinstance(s, dict)]
        if not options:
            continue
        if keyword == "allOf":
            merged: dict = {}
            values = [example_for(option, root, depth + 1) for option in options]
            if all(isinstance(value, dict) for value in values):
                for value in values:
                    merged.update(value)
                return merged
            return values[0]
        return example_for(options[0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if kind == "object" or (kind is None and isinstance(schema.get("properties"), dict)):
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return {}
        return {
            name: example_for(subschema, root, depth + 1) for name, subschema in properties.items()
        }
    if kind == "array" or (kind is None and ("items" in schema or "prefixItems" in schema)):
        if isinstance(schema.get("prefixItems"), list):
            return [example_for(item, root, depth + 1) for item in schema["prefixItems"]]
        items = schema.get("items")
        return [example_for(items, root, depth + 1)] if isinstance(items, dict) else []
    if kind == "string":
        return FORMAT_EXAMPLES.get(schema.get("format"), "string")
    if kind in ("integer", "number"):
        return _number_example(schema, kind)
    return TYPE_EXAMPLES.get(kind, "string" if kind is None else None)


def _number_example(schema: dict, kind: str) -> int | float:
    """0, or the smallest value the schema's lower bound allows."""

    def number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    exclusive, minimum = schema.get("exclusiveMinimum"), schema.get("minimum")
    if number(exclusive):
        return math.floor(exclusive) + 1
    if number(minimum) and minimum > 0:
        return math.ceil(minimum) if kind == "integer" else minimum
    return 0


def query_example(schema: Any) -> dict:
    """The example of an object schema as query parameters (scalars only, as strings)."""
    value = example_for(schema)
    if not isinstance(value, dict):
        return {}
    query = {}
    for name, item in value.items():
        if isinstance(item, bool):
            query[name] = "true" if item else "false"
        elif isinstance(item, str | int | float):
            query[name] = str(item)
    return query


# --- JSON Schema (2020-12) to an OpenAPI 3.0 schema object ------------------------------

PLAIN_KEYWORDS = (
    "title",
    "description",
    "format",
    "default",
    "multipleOf",
    "maximum",
    "minimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxProperties",
    "minProperties",
    "readOnly",
    "writeOnly",
    "deprecated",
    "example",
)
OPENAPI_TYPES = frozenset({"array", "boolean", "integer", "number", "object", "string"})


def openapi_schema(schema: Any, root: Any = None, depth: int = 0) -> dict:
    """What OpenAPI 3.0 can say of a JSON Schema: unknown keywords dropped, refs inlined.

    The flow validates its input with the full JSON Schema; this is its documentation.
    """
    if schema is False:
        return {"not": {}}
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return {}
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if not isinstance(schema, dict):
        return {}
    if "$ref" in schema:
        return openapi_schema(_resolve(schema, root), root, depth + 1)
    result: dict[str, Any] = {
        keyword: schema[keyword] for keyword in PLAIN_KEYWORDS if keyword in schema
    }
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if "null" in kinds:
        result["nullable"] = True
    kinds = [k for k in kinds if k in OPENAPI_TYPES]
    if len(kinds) == 1:
        result["type"] = kinds[0]
    elif len(kinds) > 1:
        result["anyOf"] = [{"type": k} for k in kinds]
    elif kind == "null":
        result["enum"] = [None]
    if "const" in schema:
        result["enum"] = [schema["const"]]
    elif isinstance(schema.get("enum"), list) and schema["enum"]:
        result["enum"] = schema["enum"]
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        result.setdefault("example", schema["examples"][0])
    for bound, flag in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = schema.get(bound)
        if isinstance(value, bool):
            result[bound] = value
        elif isinstance(value, int | float):
            result[flag] = value
            result[bound] = True
    required = schema.get("required")
    if isinstance(required, list) and required:
        result["required"] = list(dict.fromkeys(str(name) for name in required))
    if isinstance(schema.get("properties"), dict):
        result["properties"] = {
            str(name): openapi_schema(subschema, root, depth + 1)
            for name, subschema in schema["properties"].items()
        }
    additional = schema.get("additionalProperties")
    if isinstance(additional, bool):
        result["additionalProperties"] = additional
    elif isinstance(additional, dict):
        result["additionalProperties"] = openapi_schema(additional, root, depth + 1)
    if isinstance(schema.get("items"), dict | bool):
        result["items"] = openapi_schema(schema["items"], root, depth + 1)
    elif result.get("type") == "array":
        result["items"] = {}
    for keyword in ("allOf", "anyOf", "oneOf"):
        options = schema.get(keyword)
        if isinstance(options, list) and options:
            converted = [openapi_schema(option, root, depth + 1) for option in options]
            if keyword in result:  # the anyOf of a list of types: both must hold
                result.setdefault("allOf", []).append({keyword: converted})
            else:
                result[keyword] = converted
    if isinstance(schema.get("not"), dict | bool):
        result["not"] = openapi_schema(schema["not"], root, depth + 1)
    return result


# --- A flow's endpoints -----------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    kind: str  # "trigger" (PhixFlow) or "resource" (Axway)
    method: str
    path: str  # as callers use it: server-relative, names percent-encoded
    operation_id: str

    @property
    def has_body(self) -> bool:
        return self.method in BODY_METHODS


def flow_endpoints(flow: Flow, api: FlowApi) -> list[Endpoint]:
    """The URLs that call this flow: its resource path first (when set), then its trigger."""
    endpoints = []
    if api.path:
        endpoints.append(
            Endpoint(
                "resource", api.method, f"/api/resources{api.path}", f"flow_{flow.pk}_resource"
            )
        )
    trigger = flow.trigger_url
    endpoints += [
        Endpoint("trigger", "GET", trigger, f"flow_{flow.pk}_trigger_get"),
        Endpoint("trigger", "POST", trigger, f"flow_{flow.pk}_trigger_post"),
    ]
    return endpoints


def _timeout_text(api: FlowApi) -> str:
    if api.mode == "sync":
        return f"waits up to {api.timeout_ms} ms for the run, then stops it (504)"
    if api.mode == "auto":
        return f"waits up to {api.timeout_ms} ms for the run, then answers 202 with a poll URL"
    return f"answers 202 at once (within {api.timeout_ms} ms) with a poll URL"


def summary_lines(flow: Flow, api: FlowApi) -> list[tuple[str, str]]:
    """(label, text) pairs describing how the flow answers and who may call it."""
    lines = [
        ("Mode", f"{api.mode}: {_timeout_text(api)}"),
        (
            "Anonymous calls",
            "allowed (an API key is optional)"
            if api.allow_anonymous
            else "not allowed: send Authorization: Bearer <API key>",
        ),
        (
            "Roles",
            f"only members of {', '.join(api.roles)} (and superusers)"
            if api.roles
            else "any caller holding the run_flows privilege",
        ),
        ("Output", f"the envelope lists the records under data.{api.output_name}"),
    ]
    if flow.disabled:
        lines.append(("Disabled", "calls answer 409 until the flow is enabled"))
    return lines


# --- Operations -------------------------------------------------------------------------


def _examples(**examples: Any) -> dict:
    return {name: {"value": value} for name, value in examples.items()}


def _example_name(document: dict) -> str:
    """urn:flowsite:problem:flow-disabled -> FlowDisabled"""
    code = document["type"].rsplit(":", 1)[-1]
    return "".join(part.capitalize() for part in code.split("-"))


def problem_answer(*documents: dict) -> dict:
    """An OpenAPI response of problem documents, each an example."""
    return {
        "description": documents[0]["title"],
        "content": {
            PROBLEM_CONTENT_TYPE: {
                "schema": PROBLEM_REF,
                "examples": {
                    _example_name(doc): {"summary": doc["detail"][:100], "value": doc}
                    for doc in documents
                },
            }
        },
    }


def _invalid_input(api: FlowApi) -> dict:
    if api.input_schema is None:
        return problem(
            400, "timeout must be a positive number of milliseconds.", code="invalid-timeout"
        )
    try:
        errors = input_errors(api.input_schema, {})
    except Exception:  # a schema that validates nothing well documents no errors
        errors = []
    errors = errors or [{"pointer": "#", "detail": "{} is not valid under the given schema"}]
    return problem(
        400,
        f"The input does not match the flow's input schema ({len(errors)} problem(s)).",
        code="invalid-input",
        errors=errors,
    )


def _problems(flow: Flow, api: FlowApi, endpoint: Endpoint) -> dict[str, dict]:
    name, application = flow.name, flow.application.name
    what = (
        f"Resource {api.path}"
        if endpoint.kind == "resource"
        else f"Flow {name!r} in application {application!r}"
    )
    forbidden = (
        problem(
            403,
            f"Flow {name!r} may be called only by members of: {', '.join(api.roles)}.",
            code="role-required",
            roles=list(api.roles),
        )
        if api.roles
        else PROBLEM_EXAMPLES[403]
    )
    conflicts = [
        problem(409, f"Flow {name!r} is disabled: enable it to call it.", code="flow-disabled")
    ]
    if flow.max_concurrency and flow.concurrency_policy == Flow.ConcurrencyPolicy.REJECT:
        conflicts.append(
            problem(
                409,
                f"Flow {name!r} is already running {flow.max_concurrency} time(s), its "
                "maximum; retry later.",
                code="concurrency-limit",
            )
        )
    responses = {"400": problem_answer(_invalid_input(api))}
    if not api.allow_anonymous:
        responses["401"] = problem_answer(
            problem(
                401,
                "Authentication credentials were not provided: send Authorization: Bearer "
                "<API key>.",
                code="not-authenticated",
            ),
            PROBLEM_EXAMPLES[401],
        )
    responses["403"] = problem_answer(forbidden)
    responses["404"] = problem_answer(
        problem(404, f"{what} does not exist or is not an API.", code="not-found")
    )
    responses["409"] = problem_answer(*conflicts)
    if endpoint.has_body:
        responses["413"] = problem_answer(PROBLEM_EXAMPLES[413])
    responses["422"] = problem_answer(
        problem(
            422,
            "This Idempotency-Key was already used with a different request; use a new key "
            "for a new request.",
            code="idempotency-key-reused",
            processId=PROCESS_ID,
        )
    )
    responses["429"] = problem_answer(PROBLEM_EXAMPLES[429])
    poll = flow.trigger_url.removesuffix("/trigger") + f"/poll/{PROCESS_ID}"
    failed = {"processId": PROCESS_ID, "pollUrl": poll}
    error = {
        "step": "pageProcessors[0]",
        "stepName": "prepareResponse",
        "message": "Script prepareResponse at line 2: Error: boom 42",
        "record": {"id": 1},
        "httpStatus": None,
    }
    responses["500"] = problem_answer(
        problem(
            500,
            "Script prepareResponse at line 2: Error: boom 42",
            code="flow-failed",
            errors=[error],
            **failed,
        ),
        problem(
            500,
            "Script prepareResponse: Script exceeded its CPU-time limit of 1000 ms "
            "(FLOWSITE_SCRIPT_TIMEOUT_MS) and was stopped.",
            code="flow-failed",
            errors=[{**error, "record": None}],
            **failed,
        ),
    )
    responses["502"] = problem_answer(
        problem(
            502,
            "Look up customer: 503 from https://crm.example.com/customers/1",
            code="flow-failed",
            errors=[{**error, "step": "pageProcessors[0]", "httpStatus": 503}],
            upstreamStatus=503,
            step="pageProcessors[0]",
            **failed,
        )
    )
    responses["503"] = problem_answer(
        problem(
            503,
            "No worker can take the run now (the task broker is unavailable). Nothing was "
            "started; retry later.",
            code="broker-unavailable",
        )
    )
    if api.mode != "async":
        responses["504"] = problem_answer(
            problem(
                504,
                "The run passed its deadline and was stopped.",
                code="timed-out",
                processId=PROCESS_ID,
            )
        )
    return responses


def _success(flow: Flow, api: FlowApi) -> dict[str, dict]:
    responses = {}
    poll = flow.trigger_url.removesuffix("/trigger") + f"/poll/{PROCESS_ID}"
    if api.mode != "async":
        record = example_for(api.input_schema) if api.input_schema else {"id": 1}
        envelope = {
            "processId": PROCESS_ID,
            "status": "succeeded",
            "data": {api.output_name: [record if isinstance(record, dict) else {"value": record}]},
        }
        steps = flow.page_processors if isinstance(flow.page_processors, list) else []
        last = steps[-1] if steps and isinstance(steps[-1], dict) else {}
        script = {"message": "Hello"}
        examples = (
            _examples(Script=script, Envelope=envelope)
            if last.get("type") == "script"
            else _examples(Envelope=envelope, Script=script)
        )
        partly = {
            **envelope,
            "status": "completed_with_errors",
            "errors": {
                "count": 1,
                "first": [
                    {
                        "step": "pageProcessors[0]",
                        "stepName": "Look up customer",
                        "message": "Look up customer: 500 from https://crm.example.com/c/2",
                        "record": {"id": 2},
                        "httpStatus": 500,
                    }
                ],
            },
        }
        examples = {**examples, **_examples(CompletedWithErrors=partly)}
        responses["200"] = {
            "description": "The flow's response: the body its last script returned with "
            "{statusCode, headers, body|result} (sent as set, with that status, plus "
            "X-Content-Type-Options: nosniff and Content-Security-Policy: sandbox), else the "
            f"envelope {{processId, status, data: {{{api.output_name}: [...]}}}}. A run that "
            "completed with record errors adds errors {count, first} and answers the status "
            f"api.errorStatus chooses ({api.error_status}).",
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            {
                                "type": "object",
                                "title": "Envelope",
                                "properties": {
                                    "processId": {"type": "string", "format": "uuid"},
                                    "status": {"type": "string"},
                                    "data": {
                                        "type": "object",
                                        "properties": {
                                            api.output_name: {
                                                "type": "array",
                                                "items": {"type": "object"},
                                            }
                                        },
                                    },
                                },
                            },
                            {"description": "The body the flow's last script returned."},
                        ]
                    },
                    "examples": examples,
                }
            },
        }
    responses["202"] = {
        "description": {
            "sync": "Only when the caller sends Prefer: respond-async: the run goes on; "
            "poll the Location.",
            "auto": "The run took longer than the timeout (or the caller sent Prefer: "
            "respond-async): it goes on; poll the Location.",
            "async": "The run was accepted: poll the Location for its outcome.",
        }[api.mode],
        "headers": {
            "Location": {"description": "The poll URL.", "schema": {"type": "string"}},
            "Retry-After": {"description": "Seconds.", "schema": {"type": "integer"}},
        },
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "processId": {"type": "string", "format": "uuid"},
                        "status": {"type": "string"},
                        "pollUrl": {"type": "string"},
                    },
                },
                "examples": _examples(
                    Accepted={"processId": PROCESS_ID, "status": "queued", "pollUrl": poll}
                ),
            }
        },
    }
    return responses


def _parameters(api: FlowApi, endpoint: Endpoint) -> list[dict]:
    parameters = []
    schema = api.input_schema
    if not endpoint.has_body and isinstance(schema, dict):
        properties = schema.get("properties")
        required = schema.get("required") if isinstance(schema.get("required"), list) else []
        example = example_for(schema)
        for name, subschema in (properties if isinstance(properties, dict) else {}).items():
            parameter = {
                "name": str(name),
                "in": "query",
                "required": name in required,
                "schema": openapi_schema(subschema, schema),
            }
            if isinstance(example, dict) and example.get(name) is not None:
                parameter["example"] = example[name]
            parameters.append(parameter)
    taken = {parameter["name"] for parameter in parameters}
    if "timeout" not in taken:
        parameters.append(
            {
                "name": "timeout",
                "in": "query",
                "description": "Milliseconds to wait (sync/auto), instead of the flow's "
                f"{api.timeout_ms}; capped by the server maximum.",
                "schema": {"type": "integer", "minimum": 1},
            }
        )
    parameters += [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "description": "The same key from the same caller returns the same run.",
            "schema": {"type": "string"},
        },
        {
            "name": "Prefer",
            "in": "header",
            "description": "respond-async: answer 202 at once, whatever the flow's mode.",
            "schema": {"type": "string"},
        },
    ]
    return parameters


def _request_body(api: FlowApi) -> dict:
    schema = api.input_schema
    return {
        "required": bool(isinstance(schema, dict) and schema.get("required")),
        "content": {
            "application/json": {
                "schema": openapi_schema(schema)
                if isinstance(schema, dict)
                else {"type": "object", "additionalProperties": {}},
                "examples": _examples(Input=example_for(schema)),
            }
        },
    }


def flow_operation(flow: Flow, api: FlowApi, endpoint: Endpoint) -> dict:
    lines = [builders_text(flow.description.strip())] if flow.description.strip() else []
    lines += [f"**{label}:** {builders_text(text)}." for label, text in summary_lines(flow, api)]
    if endpoint.kind == "resource":
        lines.append(f"Also callable at `{flow.trigger_url}` (GET and POST).")
    elif api.path:
        lines.append(f"Also callable as `{api.method} /api/resources{api.path}`.")
    operation = {
        "operationId": endpoint.operation_id,
        "summary": flow.name,
        "description": "\n\n".join(lines),
        "tags": [flow.application.name],
        "parameters": _parameters(api, endpoint),
    }
    if endpoint.kind == "resource" and flow.template_flow_id:
        operation["parameters"].append(
            {
                "name": INSTANCE_HEADER,
                "in": "header",
                "description": "This instance's _id: the instances of a template share its "
                "path, and a call names the one to run.",
                "schema": {"type": "string"},
                "example": str(flow.pk),
            }
        )
    if endpoint.has_body:
        operation["requestBody"] = _request_body(api)
    operation["responses"] = {**_success(flow, api), **_problems(flow, api, endpoint)}
    operation["security"] = [{"apiKey": []}, *([{}] if api.allow_anonymous else [])]
    operation["x-flowsite-flow-id"] = flow.pk
    return operation


PROBLEM_COMPONENT = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object", "additionalProperties": {}}},
    },
    "required": ["type", "title", "status", "detail"],
}


def _api_flows() -> list[Flow]:
    # A template never answers calls: its instances are listed in its place.
    queryset = Flow.objects.filter(api_enabled=True, is_template=False).select_related(
        "application"
    )
    if connection.in_atomic_block:  # a failed query must not spoil the caller's transaction
        with transaction.atomic():
            return list(queryset)
    return list(queryset)


def add_flow_operations(result, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: one operation per way to call each API flow."""
    try:
        flows = _api_flows()
    except DatabaseError:  # no database yet (e.g. `manage.py spectacular` on a fresh checkout)
        return result
    paths = result.setdefault("paths", {})
    taken = {
        operation.get("operationId")
        for item in paths.values()
        for operation in item.values()
        if isinstance(operation, dict)
    }
    added = False
    for flow in flows:
        api = flow.api_settings
        if not api.enabled:
            continue
        for endpoint in flow_endpoints(flow, api):
            operation = flow_operation(flow, api, endpoint)
            while operation["operationId"] in taken:
                operation["operationId"] += "_"
            taken.add(operation["operationId"])
            paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
            added = True
    if added:
        schemas = result.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("Problem", PROBLEM_COMPONENT)
    return result


# --- The admin's endpoint panel ---------------------------------------------------------


def _curl(method: str, url: str, payload: Any, headers: dict[str, str] | None = None) -> str:
    lines = [
        f"curl {shlex.quote(url)}" if method == "GET" else f"curl -X {method} {shlex.quote(url)}"
    ]
    lines.append('  -H "Authorization: Bearer $FLOWSITE_KEY"')  # as README and make run name it
    lines += [f"  -H {shlex.quote(f'{name}: {value}')}" for name, value in (headers or {}).items()]
    if method in BODY_METHODS:
        lines.append('  -H "Content-Type: application/json"')
        lines.append(f"  -d {shlex.quote(json.dumps(payload, ensure_ascii=False))}")
    return " \\\n".join(lines)


def instance_headers(flow: Flow) -> dict[str, str]:
    """The header naming an instance on its template's shared path (Axway's formula
    instance id): an instance's own id; on a template, its first instance's, if any."""
    if flow.template_flow_id:
        return {INSTANCE_HEADER: str(flow.pk)}
    if flow.is_template:
        first = flow.instances.order_by("pk").values_list("pk", flat=True).first()
        return {INSTANCE_HEADER: str(first) if first else "<instance _id>"}
    return {}


def endpoint_panel(request, flow: Flow | None) -> dict:
    """Template context of the admin's "Endpoint" panel (request: for absolute URLs)."""
    panel: dict[str, Any] = {"csrf_cookie_name": settings.CSRF_COOKIE_NAME}
    document = flow.api if flow is not None else None
    errors = api_errors(document)
    api = FlowApi.of(document) if not errors else FlowApi()
    if flow is None or flow.pk is None or not api.enabled:
        slug = slugify(flow.name) if flow is not None and flow.name else "my-flow"
        panel["enabled"] = False
        panel["errors"] = errors
        panel["enable_example"] = json.dumps(
            {
                "enabled": True,
                "method": "POST",
                "path": f"/{slug or 'my-flow'}",
                "mode": "sync",
                "timeout": 60000,
                "allowAnonymous": False,
                "inputSchema": {"type": "object", "properties": {"name": {"type": "string"}}},
            },
            indent=2,
        )
        return panel
    base = request.build_absolute_uri("/").rstrip("/")
    payload = example_for(api.input_schema)
    query = urlencode(query_example(api.input_schema)) if api.input_schema else ""
    endpoints = []
    for endpoint in flow_endpoints(flow, api):
        path = endpoint.path if endpoint.has_body or not query else f"{endpoint.path}?{query}"
        headers = instance_headers(flow) if endpoint.kind == "resource" else {}
        endpoints.append(
            {
                "kind": endpoint.kind,
                "method": endpoint.method,
                "path": path,
                "url": base + path,
                "has_body": endpoint.has_body,
                "headers": headers,
                "headers_json": json.dumps(headers),
                "curl": _curl(endpoint.method, base + path, payload, headers),
            }
        )
    panel.update(
        enabled=True,
        endpoints=endpoints,
        payload=json.dumps(payload, indent=2, ensure_ascii=False),
        summary=summary_lines(flow, api),
    )
    return panel
