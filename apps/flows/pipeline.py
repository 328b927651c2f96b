"""The flow document's pipeline: validation at save, and the FlowSpec the engine runs.

Flows reference exports, imports and scripts by id inside JSON (Celigo's
pageGenerators/pageProcessors), so references are checked here, not by foreign keys.
"""

from typing import Any

from apps.flows.crypto import Undecryptable
from apps.flows.engine.paths import parse
from apps.flows.engine.spec import (
    ExportSpec,
    FieldMapping,
    FlowSpec,
    ImportSpec,
    ListMapping,
    ResponseMapping,
    ScriptSpec,
    StepSpec,
    SubflowSpec,
)
from apps.flows.engine.steps import STEP_KINDS
from apps.flows.models import Connection, Export, Flow, Import, Script
from apps.flows.outbound import Auth, ConnectionConfig

RESOURCES = {
    "export": ("_exportId", Export),
    "import": ("_importId", Import),
    "script": ("_scriptId", Script),
    "flow": ("_flowId", Flow),
}
PROCESSOR_KEYS = {
    "type",
    "_exportId",
    "_importId",
    "_scriptId",
    "_flowId",
    "proceedOnFailure",
    "responseMapping",
    "function",
    "name",
}


MAX_ID = 2**63 - 1


def as_id(value: Any) -> int | None:
    """A resource id from the document ("12" or 12), or None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if 0 < number <= MAX_ID else None


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and bool(parse(value))


def _mapping_errors(mapping: Any, where: str) -> list[str]:
    if mapping is None:
        return []
    if not isinstance(mapping, dict) or set(mapping) - {"lists", "fields"}:
        return [f"{where}.responseMapping must be an object with 'fields' and 'lists'."]
    fields, lists = mapping.get("fields") or [], mapping.get("lists") or []
    if not isinstance(fields, list) or not isinstance(lists, list):
        return [f"{where}.responseMapping: 'fields' and 'lists' must be lists."]
    errors = []
    for index, field in enumerate(fields):
        if not (
            isinstance(field, dict)
            and isinstance(field.get("extract"), str)
            and _is_path(field.get("generate"))
        ):
            errors.append(
                f"{where}.responseMapping.fields[{index}] needs 'extract' and 'generate' paths."
            )
    for index, item in enumerate(lists):
        if not (isinstance(item, dict) and _is_path(item.get("generate"))):
            errors.append(f"{where}.responseMapping.lists[{index}] needs a 'generate' path.")
        else:
            errors.extend(
                _mapping_errors(
                    {"fields": item.get("fields") or []}, f"{where}.responseMapping.lists[{index}]"
                )
            )
    return errors


def subflow_ids(page_processors: Any) -> set[int]:
    if not isinstance(page_processors, list):
        return set()
    return {
        flow_id
        for step in page_processors
        if isinstance(step, dict)
        and step.get("type") == "flow"
        and (flow_id := as_id(step.get("_flowId"))) is not None
    }


def cycle_through(flow_id: int, called: set[int]) -> list[int] | None:
    """The chain of sub-flow calls that leads back to `flow_id`, if any."""
    paths = {called_id: [flow_id, called_id] for called_id in called}
    seen: set[int] = set()
    frontier = set(called)
    while frontier:
        if flow_id in frontier:
            return paths[flow_id]
        seen |= frontier
        following: set[int] = set()
        for pk, processors in Flow.objects.filter(pk__in=frontier).values_list(
            "pk", "page_processors"
        ):
            for next_id in subflow_ids(processors) - seen:
                paths.setdefault(next_id, [*paths[pk], next_id])
                following.add(next_id)
        frontier = following
    return None


def pipeline_errors(
    page_generators: Any,
    page_processors: Any,
    *,
    flow_id: int | None = None,
    application_id: int | None = None,
) -> dict[str, list[str]]:
    """Problems with a flow's pipeline, by field; empty when it can run.

    With `application_id`, exports, imports and scripts of another application are refused
    (shared ones, without an application, are fine; a sub-flow may be any application's)."""
    errors: dict[str, list[str]] = {}
    wanted: dict[str, set[int]] = {kind: set() for kind in RESOURCES}
    where_of: dict[tuple[str, int], list[str]] = {}

    if not isinstance(page_generators, list):
        errors["page_generators"] = ["pageGenerators must be a list."]
        page_generators = []
    for index, generator in enumerate(page_generators):
        where = f"pageGenerators[{index}]"
        export_id = as_id(generator.get("_exportId")) if isinstance(generator, dict) else None
        if export_id is None:
            errors.setdefault("page_generators", []).append(f"{where} needs an _exportId.")
            continue
        wanted["export"].add(export_id)
        where_of.setdefault(("export", export_id), []).append(where)

    if not isinstance(page_processors, list):
        errors["page_processors"] = ["pageProcessors must be a list."]
        page_processors = []
    for index, processor in enumerate(page_processors):
        where = f"pageProcessors[{index}]"
        problems = errors.setdefault("page_processors", [])
        if not isinstance(processor, dict):
            problems.append(f"{where} must be an object.")
            continue
        kind = processor.get("type")
        if not isinstance(kind, str) or kind not in STEP_KINDS:
            problems.append(f"{where}.type must be one of {', '.join(sorted(STEP_KINDS))}.")
            continue
        if unknown := set(processor) - PROCESSOR_KEYS:
            problems.append(f"{where} has unknown fields: {', '.join(sorted(unknown))}.")
        key, _ = RESOURCES[kind]
        resource_id = as_id(processor.get(key))
        if resource_id is None:
            problems.append(f"{where} ({kind}) needs {key}.")
            continue
        if not isinstance(processor.get("proceedOnFailure", False), bool):
            problems.append(f"{where}.proceedOnFailure must be true or false.")
        problems.extend(_mapping_errors(processor.get("responseMapping"), where))
        for text_key in ("function", "name"):
            if text_key in processor and not isinstance(processor[text_key], str):
                problems.append(f"{where}.{text_key} must be a string.")
        wanted[kind].add(resource_id)
        where_of.setdefault((kind, resource_id), []).append(where)

    for kind, ids in wanted.items():
        if not ids:
            continue
        _, model = RESOURCES[kind]
        owner = "application_id" if kind != "flow" else "pk"
        found = dict(model.objects.filter(pk__in=ids).values_list("pk", owner))
        for resource_id in sorted(ids):
            if resource_id not in found:
                problem = f"{kind} {resource_id} does not exist."
            elif kind != "flow" and found[resource_id] not in (None, application_id):
                problem = f"{kind} {resource_id} belongs to another application."
            else:
                continue
            for where in where_of[(kind, resource_id)]:
                field = (
                    "page_generators" if where.startswith("pageGenerators") else "page_processors"
                )
                errors.setdefault(field, []).append(f"{where}: {problem}")
    called = wanted["flow"]
    if flow_id is not None and called and (chain := cycle_through(flow_id, called)):
        errors.setdefault("page_processors", []).append(
            "Sub-flows would call each other in a cycle: flow "
            + " → flow ".join(str(pk) for pk in chain)
            + "."
        )
    return {field: problems for field, problems in errors.items() if problems}


def connection_config(connection: Connection) -> ConnectionConfig:
    try:
        secrets = connection.secrets()
        headers = connection.default_headers()
    except Undecryptable as exc:
        raise Undecryptable(f'Connection "{connection.name}": {exc}') from None
    return ConnectionConfig(
        key=f"{connection.pk}:{connection.modified_at.timestamp()}",
        base_uri=connection.base_uri,
        headers=headers,
        auth=Auth(
            type=connection.auth_type,
            username=connection.username,
            password=secrets.get("password", ""),
            token=secrets.get("token", ""),
            header_name=connection.header_name or "X-API-Key",
            api_key=secrets.get("api_key", ""),
            token_url=connection.token_url,
            client_id=connection.client_id,
            client_secret=secrets.get("client_secret", ""),
            scope=connection.scope,
        ),
        allowed_private_hosts=tuple(connection.allowed_private_hosts or ()),
        timeout_ms=connection.timeout_ms,
        concurrency=connection.concurrency,
    )


def export_spec(export: Export, config: ConnectionConfig) -> ExportSpec:
    return ExportSpec(
        id=export.pk,
        name=export.name,
        connection=config,
        method=export.method,
        relative_uri=export.relative_uri,
        query=export.query or {},
        headers=export.headers or {},
        body=export.body,
        resource_path=export.resource_path,
        paging=export.paging,
        page_size=export.page_size,
        page_size_param=export.page_size_param or "pageSize",
        page_param=export.page_param or "page",
        next_path=export.next_path,
        cursor_param=export.cursor_param or "cursor",
        max_pages=export.max_pages,
        records=_records_config(export),
    )


def import_spec(record_import: Import, config: ConnectionConfig) -> ImportSpec:
    return ImportSpec(
        id=record_import.pk,
        name=record_import.name,
        connection=config,
        method=record_import.method,
        relative_uri=record_import.relative_uri,
        headers=record_import.headers or {},
        body=record_import.body,
        batch_size=record_import.batch_size,
        records=_records_config(record_import),
    )


def _records_config(resource: Export | Import) -> dict | None:
    """A data tables connection's settings; None for HTTP."""
    if resource.connection.type != Connection.Type.RECORDS:
        return None
    return dict(resource.records or {})


def _mapping(document: dict | None) -> ResponseMapping:
    document = document or {}
    return ResponseMapping(
        fields=tuple(
            FieldMapping(f["extract"], f["generate"]) for f in document.get("fields") or []
        ),
        lists=tuple(
            ListMapping(
                item["generate"],
                tuple(FieldMapping(f["extract"], f["generate"]) for f in item.get("fields") or []),
            )
            for item in document.get("lists") or []
        ),
    )


class PipelineError(ValueError):
    """The flow references something that is gone: it cannot run."""


def build_flow_spec(flow: Flow) -> FlowSpec:
    """Load everything the flow uses in a few queries and describe it for the engine.

    The pipeline was validated when the flow was saved; a resource deleted since then is
    reported here (a cycle that slipped in meets the sub-flow depth limit).
    """
    try:
        return _build_flow_spec(flow)
    except Undecryptable as exc:
        raise PipelineError(str(exc)) from None
    except (KeyError, TypeError, ValueError) as exc:
        errors = pipeline_errors(flow.page_generators, flow.page_processors)
        messages = [message for found in errors.values() for message in found]
        raise PipelineError(" ".join(messages) or f"The flow cannot run: {exc!r}") from None


def _build_flow_spec(flow: Flow) -> FlowSpec:
    ids = {kind: set() for kind in RESOURCES}
    for generator in flow.page_generators:
        ids["export"].add(int(generator["_exportId"]))
    for processor in flow.page_processors:
        key, _ = RESOURCES[processor["type"]]
        ids[processor["type"]].add(int(processor[key]))
    exports = Export.objects.select_related("connection").in_bulk(ids["export"])
    imports = Import.objects.select_related("connection").in_bulk(ids["import"])
    scripts = Script.objects.in_bulk(ids["script"])
    subflows = dict(Flow.objects.filter(pk__in=ids["flow"]).values_list("pk", "name"))
    configs: dict[int, ConnectionConfig] = {}
    # An instance of a template runs the template's exports and imports on its own
    # connections: {template's connection id: the instance's}.
    mapped = {int(old): int(new) for old, new in (flow.connection_map or {}).items()}
    own = Connection.objects.in_bulk(set(mapped.values())) if mapped else {}

    def config_of(resource) -> ConnectionConfig:
        connection_id = mapped.get(resource.connection_id, resource.connection_id)
        if connection_id not in configs:
            connection = own.get(connection_id) if connection_id != resource.connection_id else None
            if connection is None and connection_id != resource.connection_id:
                raise ValueError(f"Connection {connection_id} of the instance no longer exists.")
            configs[connection_id] = connection_config(connection or resource.connection)
        return configs[connection_id]

    def resource_spec(kind: str, resource_id: int):
        if kind == "export":
            return export_spec(exports[resource_id], config_of(exports[resource_id]))
        if kind == "import":
            return import_spec(imports[resource_id], config_of(imports[resource_id]))
        if kind == "flow":
            return SubflowSpec(id=resource_id, name=subflows[resource_id])
        script = scripts[resource_id]
        return ScriptSpec(id=script.pk, name=script.name, source=script.content)

    generators = tuple(
        StepSpec(
            kind="export",
            path=f"pageGenerators[{index}]",
            position=index,
            name=exports[int(g["_exportId"])].name,
            resource=resource_spec("export", int(g["_exportId"])),
        )
        for index, g in enumerate(flow.page_generators)
    )
    processors = []
    for index, processor in enumerate(flow.page_processors):
        kind = processor["type"]
        key, _ = RESOURCES[kind]
        resource = resource_spec(kind, int(processor[key]))
        processors.append(
            StepSpec(
                kind=kind,
                path=f"pageProcessors[{index}]",
                position=len(generators) + index,
                name=processor.get("name") or resource.name,
                resource=resource,
                proceed_on_failure=bool(processor.get("proceedOnFailure", False)),
                response_mapping=_mapping(processor.get("responseMapping")),
                function=processor.get("function") or "main",
            )
        )
    return FlowSpec(
        id=flow.pk,
        name=str(flow),
        generators=generators,
        processors=tuple(processors),
        variables=dict(flow.variables or {}),
        skip_retries=flow.skip_retries,
    )
