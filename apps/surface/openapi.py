"""Every REST-enabled operation and view of the integration surface as an operation of its
own in the OpenAPI schema, next to the generic Execute() and Query() endpoints.

`add_surface_operations` is a drf-spectacular postprocessing hook (registered after the
flows' one in SPECTACULAR_SETTINGS): each operation whose "REST Execute()" is on gets
`POST /api/rest/execute/<Application>/<Operation>` with a request schema generated from
its record type's fields (RecordID, ExternalTransactionId, choices as an enum or
`{"Selection": …}`) and the example payload of the surface configuration page; each view
whose "REST API" is on gets `GET /api/rest/query/<Application>/<View>` with its URL
parameters, limit/cursor/since, and an array of its record documents.
"""

from typing import Any

from django.db import DatabaseError, connection, transaction

from apps.accounts.permissions import may_manage
from apps.core.openapi import PROBLEM_EXAMPLES, builders_text
from apps.core.problems import problem
from apps.flows.openapi import PROBLEM_COMPONENT, PROCESS_ID, problem_answer
from apps.records.definitions import parameter_spec
from apps.records.models import RecordField
from apps.surface import selectors
from apps.surface.models import Operation, SurfaceConfiguration, View

Type = RecordField.Type
SCALARS: dict[str, dict] = {
    Type.TEXT: {"type": "string"},
    Type.LONG_TEXT: {"type": "string"},
    Type.EMAIL: {"type": "string", "format": "email"},
    Type.URL: {"type": "string", "format": "uri"},
    Type.NUMBER: {"type": "number"},
    Type.INTEGER: {"type": "integer", "format": "int64"},
    Type.BOOLEAN: {"type": "boolean"},
    Type.DATE: {"type": "string", "format": "date"},
    Type.DATETIME: {"type": "string", "format": "date-time"},
    Type.JSON: {"description": "Any JSON value."},
}
SYSTEM_SCHEMA: dict[str, dict] = {
    "RecordID": {"type": "integer"},
    "CreatedBy": {"type": "string", "nullable": True},
    "CreatedOn": {"type": "string", "format": "date-time"},
    "ModifiedBy": {"type": "string", "nullable": True},
    "ModifiedOn": {"type": "string", "format": "date-time"},
    "SubmissionId": {"type": "integer"},
}
MAX_TRANSACTION_ID = 200


# --- Schemas from a record type's fields ------------------------------------------------


def _selection(choices: list[str]) -> dict:
    return {
        "type": "object",
        "required": ["Selection"],
        "additionalProperties": False,
        "properties": {"Selection": {"type": "string", "enum": list(choices)}},
    }


def input_schema(field: RecordField) -> dict:
    """What Execute() accepts for a field: choices as text or {"Selection": …}."""
    if field.type == Type.CHOICE:
        schema: dict = {
            "oneOf": [{"type": "string", "enum": list(field.choices)}, _selection(field.choices)]
        }
    elif field.type == Type.MULTI_CHOICE:
        schema = {
            "type": "array",
            "items": {
                "oneOf": [
                    {"type": "string", "enum": list(field.choices)},
                    _selection(field.choices),
                ]
            },
        }
    else:
        schema = dict(SCALARS.get(field.type, {}))
    if not field.required and field.type != Type.JSON:
        schema["nullable"] = True
    label = RecordField.Type(field.type).label if field.type in Type.values else field.type
    schema["description"] = label + (" (required)" if field.required else "")
    if field.default is not None:
        schema["default"] = field.default
    return schema


def output_schema(field: RecordField) -> dict:
    """How record documents show a field: choices as {"Selection": …}, null when empty."""
    if field.type == Type.CHOICE:
        schema: dict = _selection(field.choices)
    elif field.type == Type.MULTI_CHOICE:
        schema = {"type": "array", "items": _selection(field.choices)}
    else:
        schema = dict(SCALARS.get(field.type, {}))
    if field.type != Type.JSON:
        schema["nullable"] = True
    return schema


def record_schema(fields: list[RecordField], *, process_id: bool = False) -> dict:
    properties = {**SYSTEM_SCHEMA, **{field.name: output_schema(field) for field in fields}}
    if process_id:
        properties["processId"] = {
            "type": "string",
            "format": "uuid",
            "description": "The run of the operation's flow.",
        }
    return {"type": "object", "properties": properties}


def request_schema(operation: Operation) -> dict:
    action = operation.action
    if action == Operation.Action.CREATE:
        record_id = {
            "type": "integer",
            "nullable": True,
            "description": "null (or left out): this operation creates a record.",
        }
    else:
        record_id = {"type": "integer", "minimum": 1, "description": f"The record to {action}."}
    properties: dict[str, Any] = {
        "RecordID": record_id,
        "ExternalTransactionId": {
            "type": "string",
            "maxLength": MAX_TRANSACTION_ID,
            "description": "Makes the call idempotent: the same id from the same account "
            "answers the first call's result and changes nothing again.",
        },
    }
    required = [] if action == Operation.Action.CREATE else ["RecordID"]
    if action != Operation.Action.DELETE:
        for field in operation.record_type.fields.all():
            properties[field.name] = input_schema(field)
            if action == Operation.Action.CREATE and field.required and field.default is None:
                required.append(field.name)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if action != Operation.Action.DELETE:
        # The other system fields are accepted (a record document can be sent back) and
        # ignored; anything else is refused.
        schema["additionalProperties"] = False
        for name, system in SYSTEM_SCHEMA.items():
            properties.setdefault(name, {**system, "readOnly": True})
    if required:
        schema["required"] = required
    return schema


# --- Answers ----------------------------------------------------------------------------


def _refusals(subject: Operation | View, surface: selectors.Surface) -> dict:
    kind = subject._meta.verbose_name
    names = [role.name for role in subject.roles.all()]
    refusals = [
        problem(
            403,
            f"{surface.name} is disabled in the surface configuration: an administrator must "
            "enable it (admin: Integration surface, Surface configuration).",
            code="surface-disabled",
        ),
        problem(
            403,
            "'restuser' is not one of the integration accounts chosen in the surface "
            "configuration.",
            code="integration-account-not-allowed",
        ),
        problem(
            403,
            f"Your account lacks the privilege '{surface.privilege.value}'. Ask an "
            "administrator to grant it through a role.",
            code="missing-privilege",
            privilege=surface.privilege.value,
        ),
    ]
    if names:
        refusals.append(
            problem(
                403,
                f"The {kind} {subject.name!r} may be called only by members of: "
                f"{', '.join(names)}.",
                code="role-required",
                roles=names,
            )
        )
    return {
        "401": problem_answer(PROBLEM_EXAMPLES[401]),
        "403": problem_answer(*refusals),
        "429": problem_answer(PROBLEM_EXAMPLES[429]),
    }


def _json(schema: dict, **examples: Any) -> dict:
    return {
        "application/json": {
            "schema": schema,
            "examples": {name: {"value": value} for name, value in examples.items()},
        }
    }


def _who(subject: Operation | View, surface: selectors.Surface, enabled: bool | None) -> str:
    names = [role.name for role in subject.roles.all()]
    lines = [
        f"**Callers:** integration accounts of the surface configuration holding "
        f"`{surface.privilege.value}`" + (f", members of {', '.join(names)}" if names else "") + "."
    ]
    if not enabled:
        lines.append(
            f"**{surface.name} is switched off** in the surface configuration: calls answer "
            "403 until an administrator enables it."
        )
    return "\n\n".join(lines)


def execute_operation(operation: Operation, enabled: bool | None) -> dict:
    fields = list(operation.record_type.fields.all())
    has_flow = operation.flow_id is not None
    answer = selectors.example_answer(fields)
    if has_flow:
        answer["processId"] = PROCESS_ID
    success = "201" if operation.action == Operation.Action.CREATE else "200"
    description = {
        Operation.Action.CREATE: "Created: the new record.",
        Operation.Action.UPDATE: "Updated: the record as it is now.",
        Operation.Action.DELETE: "Deleted: the record as it was.",
    }[operation.action]
    lines = [builders_text(operation.description.strip())] if operation.description.strip() else []
    lines.append(
        f"{operation.get_action_display()} of record type "
        f"**{builders_text(operation.record_type.name)}**"
        + (" and run its flow with it, in one transaction." if has_flow else ".")
    )
    lines.append(_who(operation, selectors.EXECUTE, enabled))
    first = next((field for field in fields if field.required), None)
    invalid_record = problem(
        400,
        f"The record is invalid (1 problem(s)): {first.name if first else 'the record'}.",
        code="invalid-record",
        errors=[
            {
                "pointer": f"#/{first.name}" if first else "#",
                "detail": "This field is required." if first else "Expected a JSON object.",
            }
        ],
    )
    responses: dict[str, Any] = {
        success: {
            "description": description
            + (" processId names the run of its flow." if has_flow else ""),
            "headers": {
                "Idempotent-Replayed": {
                    "description": "true when the answer is that of an earlier call with the "
                    "same ExternalTransactionId.",
                    "schema": {"type": "string"},
                }
            },
            "content": _json(record_schema(fields, process_id=has_flow), Record=answer),
        },
        "400": problem_answer(invalid_record),
        **_refusals(operation, selectors.EXECUTE),
        "404": problem_answer(
            problem(
                404,
                f"Operation {operation.name!r} of application {operation.application.name!r} "
                "does not exist or is not enabled for REST Execute().",
                code="not-found",
            ),
            *(
                []
                if operation.action == Operation.Action.CREATE
                else [
                    problem(
                        404,
                        f"Record 1 of {operation.record_type.name} does not exist.",
                        code="record-not-found",
                        RecordID=1,
                    )
                ]
            ),
        ),
        "409": problem_answer(
            problem(
                409,
                "ExternalTransactionId '2f1c7a52-0001' was already used for 'Other "
                "operation'; use a new one for each transaction.",
                code="transaction-id-reused",
            )
        ),
        "413": problem_answer(PROBLEM_EXAMPLES[413]),
        "415": problem_answer(PROBLEM_EXAMPLES[415]),
    }
    reused = problem(
        422,
        "ExternalTransactionId '2f1c7a52-0001' was already used with a different RecordID "
        "or different values; use a new one for each transaction (the same one only to send "
        "the same call again).",
        code="idempotency-key-reused",
    )
    failed = problem(
        422,
        "The operation's flow failed, so the record change was rolled back: no",
        code="flow-failed",
        processId=PROCESS_ID,
        flowStatus="failed",
    )
    responses["422"] = problem_answer(*((failed, reused) if has_flow else (reused,)))
    return {
        "operationId": f"surface_execute_{operation.pk}",
        "summary": f"Execute(): {operation.name}",
        "description": "\n\n".join(lines),
        "tags": [operation.application.name],
        "requestBody": {
            "required": True,
            "content": _json(
                request_schema(operation), Payload=selectors.example_payload(operation)
            ),
        },
        "responses": dict(sorted(responses.items())),
        "security": [{"apiKey": []}],
        "x-flowsite-operation-id": operation.pk,
    }


def _parameter(parameter: dict, operators: dict[str, str]) -> dict:
    name = parameter["name"]
    spec = parameter_spec(parameter)
    if operators.get(name) == "in":
        schema: dict = {"type": "string", "description": "Comma-separated values."}
    else:
        schema = {
            key: value for key, value in SCALARS.get(spec.type, {}).items() if key != "description"
        } or {"type": "string"}
    if parameter.get("default") is not None:
        schema["default"] = parameter["default"]
    result = {
        "name": name,
        "in": "query",
        "required": bool(parameter.get("required")),
        "description": f"A {parameter.get('type', 'text')} value"
        + (f" (filter op {operators[name]})" if name in operators else "")
        + ".",
        "schema": schema,
    }
    return result


def query_operation(view: View, enabled: bool | None) -> dict:
    fields = selectors.view_fields(view)
    operators = {f.get("parameter"): f.get("op", "eq") for f in view.filters if "parameter" in f}
    parameters = [_parameter(parameter, operators) for parameter in view.parameters]
    parameters += [
        {
            "name": "limit",
            "in": "query",
            "description": "Records per page, 1 to 1000 (100).",
            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
        },
        {
            "name": "cursor",
            "in": "query",
            "description": "From the Link header's next URL.",
            "schema": {"type": "string"},
        },
        {
            "name": "since",
            "in": "query",
            "description": "Only records created or changed after this SubmissionId, oldest "
            "change first (incremental sync: X-Last-Submission-Id is the next `since`).",
            "schema": {"type": "integer", "minimum": 0},
        },
    ]
    lines = [builders_text(view.description.strip())] if view.description.strip() else []
    lines.append(f"Records of record type **{builders_text(view.record_type.name)}**.")
    lines.append(_who(view, selectors.QUERY, enabled))
    required = [p for p in view.parameters if p.get("required")]
    bad_query = problem(
        400,
        (
            f"Missing required parameter {required[0]['name']}."
            if required
            else "Unknown query parameter 'colour'."
        ),
        code="invalid",
        errors=[
            {
                "pointer": f"#/{required[0]['name'] if required else 'colour'}",
                "detail": "This parameter is required."
                if required
                else "Not a parameter of the view.",
            }
        ],
    )
    responses = {
        "200": {
            "description": "A JSON array of record documents; Link rel=next for the next page.",
            "headers": {
                "Link": {
                    "description": 'The next page: <…>; rel="next".',
                    "schema": {"type": "string"},
                },
                "X-Last-Submission-Id": {
                    "description": "The highest SubmissionId seen: the next sync's `since`.",
                    "schema": {"type": "integer"},
                },
            },
            "content": _json(
                {"type": "array", "items": record_schema(fields)},
                Records=[selectors.example_answer(fields)],
            ),
        },
        "400": problem_answer(bad_query),
        **_refusals(view, selectors.QUERY),
        "404": problem_answer(
            problem(
                404,
                f"View {view.name!r} of application {view.application.name!r} does not exist "
                "or is not enabled for REST Query().",
                code="not-found",
            )
        ),
    }
    return {
        "operationId": f"surface_query_{view.pk}",
        "summary": f"Query(): {view.name}",
        "description": "\n\n".join(lines),
        "tags": [view.application.name],
        "parameters": parameters,
        "responses": dict(sorted(responses.items())),
        "security": [{"apiKey": []}],
        "x-flowsite-view-id": view.pk,
    }


# --- The hook ---------------------------------------------------------------------------


def _load() -> tuple[SurfaceConfiguration | None, list[Operation], list[View]]:
    def read():
        configuration = SurfaceConfiguration.objects.filter(
            pk=SurfaceConfiguration.SINGLETON_PK
        ).first()
        operations = list(selectors.rest_operations().select_related("flow"))
        return configuration, operations, list(selectors.rest_views())

    if connection.in_atomic_block:  # a failed query must not spoil the caller's transaction
        with transaction.atomic():
            return read()
    return read()


def _may_call(surface: selectors.Surface, request) -> bool:
    """Whether the reader may call Execute() or Query() at all: an integration account of
    the configuration holding the privilege, with a key not restricted to flows."""
    user = getattr(request, "user", None)
    if not (user and user.is_authenticated):
        return False
    if getattr(getattr(request, "auth", None), "restricted", False):
        return False
    try:
        selectors.check_caller(surface, user)
    except selectors.SurfaceRefused:
        return False
    return True


def _readable(subjects: list, surface: selectors.Surface, request, everything: bool) -> list:
    """The operations or views the reader may call (all of them for who may manage)."""
    if everything:
        return subjects
    if not _may_call(surface, request):
        return []
    readable = []
    for subject in subjects:
        try:
            selectors.check_roles(subject, request.user)
        except selectors.SurfaceRefused:
            continue
        readable.append(subject)
    return readable


GENERIC = {selectors.EXECUTE: "surface_execute", selectors.QUERY: "surface_query"}


def _without_operation(paths: dict, operation_id: str) -> None:
    for path in list(paths):
        paths[path] = {
            method: operation
            for method, operation in paths[path].items()
            if not (isinstance(operation, dict) and operation.get("operationId") == operation_id)
        }
        if not paths[path]:
            del paths[path]


def add_surface_operations(result, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: Execute() and Query() per enabled subject.

    A reader who may manage flows (or `manage.py spectacular`, which has no reader) sees
    every one; any other reader only the surface it may call, and in it the operations and
    views its roles allow (the generic endpoints go when it may not call that surface)."""
    try:
        configuration, operations, views = _load()
    except DatabaseError:  # no database yet (e.g. `manage.py spectacular` on a fresh checkout)
        return result
    paths = result.setdefault("paths", {})
    everything = request is None or may_manage(request)
    if not everything:
        for surface, operation_id in GENERIC.items():
            if not _may_call(surface, request):
                _without_operation(paths, operation_id)
    operations = _readable(operations, selectors.EXECUTE, request, everything)
    views = _readable(views, selectors.QUERY, request, everything)
    for operation in operations:
        enabled = configuration.execute if configuration else False
        paths.setdefault(selectors.execute_url(operation), {})["post"] = execute_operation(
            operation, enabled
        )
    for view in views:
        enabled = configuration.query if configuration else False
        paths.setdefault(selectors.query_url(view), {})["get"] = query_operation(view, enabled)
    if operations or views:
        schemas = result.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("Problem", PROBLEM_COMPONENT)
    return result
