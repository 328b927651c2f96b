"""Reads for flows: which resources a flow uses, and which flows use a resource.

Flows reference exports, imports, scripts and sub-flows inside their JSON documents, so
"who uses this" is answered by reading the flows' pipelines (one query for all flows).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import models
from django.db.models import Q

from apps.flows.crypto import Undecryptable
from apps.flows.models import Application, Connection, Export, Flow, Import, Script
from apps.flows.pipeline import RESOURCES, as_id
from apps.flows.step_samples import ScriptStep


@dataclass
class Uses:
    """The resource ids one pipeline references, by kind."""

    export: set[int] = field(default_factory=set)
    import_: set[int] = field(default_factory=set)
    script: set[int] = field(default_factory=set)
    flow: set[int] = field(default_factory=set)

    def of(self, kind: str) -> set[int]:
        return getattr(self, "import_" if kind == "import" else kind)


def uses(page_generators, page_processors) -> Uses:
    found = Uses()
    for generator in page_generators if isinstance(page_generators, list) else []:
        if isinstance(generator, dict) and (pk := as_id(generator.get("_exportId"))):
            found.export.add(pk)
    for processor in page_processors if isinstance(page_processors, list) else []:
        kind = processor.get("type") if isinstance(processor, dict) else None
        if not isinstance(kind, str) or kind not in RESOURCES:
            continue
        key, _ = RESOURCES[processor["type"]]
        if pk := as_id(processor.get(key)):
            found.of(processor["type"]).add(pk)
    return found


def flows_using(kind: str, ids: Iterable[int]) -> list[Flow]:
    """The flows whose pipeline references any of these exports, imports, scripts or flows."""
    wanted = set(ids)
    if not wanted:
        return []
    rows = Flow.objects.select_related("application").only(
        "pk", "name", "application__name", "page_generators", "page_processors"
    )
    return [
        flow for flow in rows if uses(flow.page_generators, flow.page_processors).of(kind) & wanted
    ]


def script_steps(script: Script) -> list[ScriptStep]:
    """Where flows call this script now: each step's flow, path and name (one query)."""
    found = []
    for flow in flows_using("script", [script.pk]):
        for index, step in enumerate(flow.page_processors):
            if (
                isinstance(step, dict)
                and step.get("type") == "script"
                and as_id(step.get("_scriptId")) == script.pk
            ):
                name = step.get("name") or script.name
                found.append(ScriptStep(flow.pk, f"pageProcessors[{index}]", str(name)))
    return found


def flows_using_connection(connection: Connection) -> list[Flow]:
    exports = Export.objects.filter(connection=connection).values_list("pk", flat=True)
    imports = Import.objects.filter(connection=connection).values_list("pk", flat=True)
    by_pk = {flow.pk: flow for flow in flows_using("export", exports)}
    by_pk.update((flow.pk, flow) for flow in flows_using("import", imports))
    # Instances of templates run on the connections of their connection maps.
    instances = Flow.objects.filter(template_flow__isnull=False).select_related("application")
    by_pk.update(
        (flow.pk, flow)
        for flow in instances.only("pk", "name", "application__name", "connection_map")
        if str(connection.pk) in {str(pk) for pk in (flow.connection_map or {}).values()}
    )
    return sorted(by_pk.values(), key=str)


def instances_of(template: Flow) -> list[Flow]:
    """A template's instances, oldest first (Axway's formula instances)."""
    if template.pk is None:
        return []
    return list(template.instances.select_related("application").order_by("pk"))


@dataclass
class Dependencies:
    exports: list[Export]
    imports: list[Import]
    scripts: list[Script]
    connections: list[Connection]
    flows: list[Flow]  # sub-flows it calls
    used_by: list[Flow]  # flows calling it as a sub-flow


def dependencies(flow: Flow) -> Dependencies:
    found = uses(flow.page_generators, flow.page_processors)
    exports = list(Export.objects.filter(pk__in=found.export))
    imports = list(Import.objects.filter(pk__in=found.import_))
    # An instance calls its connection map's connections, not its template's.
    mapped = {int(old): int(new) for old, new in (flow.connection_map or {}).items()}
    called = {mapped.get(r.connection_id, r.connection_id) for r in (*exports, *imports)}
    return Dependencies(
        exports=exports,
        imports=imports,
        scripts=list(Script.objects.filter(pk__in=found.script)),
        connections=list(Connection.objects.filter(pk__in=called).order_by("pk")),
        flows=list(Flow.objects.filter(pk__in=found.flow).select_related("application")),
        used_by=flows_using("flow", [flow.pk]),
    )


@dataclass
class Usage:
    """Why a resource cannot be deleted: what still uses it."""

    message: str
    flows: list[Flow]


def _named(flows: list[Flow]) -> str:
    return ", ".join(f"{flow} ({flow.pk})" for flow in flows[:20])


def handled_by(handler: Flow) -> list[Flow]:
    """The other flows whose failures `handler` handles, named on them or on their
    integration."""
    return list(
        Flow.objects.select_related("application")
        .filter(Q(error_flow=handler) | Q(error_flow__isnull=True, application__error_flow=handler))
        .exclude(pk=handler.pk)
        .order_by("pk")
    )


def usage_of(instance: models.Model) -> Usage | None:
    """What keeps a flow, resource or integration from being deleted, if anything."""
    if isinstance(instance, Flow):
        flows, what = flows_using("flow", [instance.pk]), "calls it as a sub-flow"
        if not flows and (flows := instances_of(instance)):
            what = "is an instance of this template: delete the instances first"
        if not flows and (flows := handled_by(instance)):
            # Deleting it unlinked it silently: the failures it reported went nowhere (an
            # outside probe). Its flows (or their integration) must name another first.
            what = "names it as its error handler (or its integration does)"
    elif isinstance(instance, Export | Import | Script):
        kind = type(instance).__name__.lower()
        flows, what = flows_using(kind, [instance.pk]), f"uses this {kind}"
    elif isinstance(instance, Connection):
        flows = flows_using_connection(instance)
        what = "reads or writes through this connection"
        if not flows and (
            Export.objects.filter(connection=instance).exists()
            or Import.objects.filter(connection=instance).exists()
        ):
            return Usage("Exports or imports still use this connection; delete them first.", [])
    elif isinstance(instance, Application):
        flows = list(instance.flows.select_related("application"))
        what = "belongs to this integration"
        owned = (model.objects.filter(application=instance) for model in (Export, Import, Script))
        if not flows and any(rows.exists() for rows in owned):
            return Usage(
                "Exports, imports or scripts still belong to this integration; delete them first.",
                [],
            )
    else:
        return None
    return Usage(f"Still in use: flow {_named(flows)} {what}.", flows) if flows else None


def undecryptable_secrets() -> tuple[list[str], list[str]]:
    """The names of the connections, and of the flows, with stored secrets that
    FLOWSITE_ENCRYPTION_KEY cannot decrypt (a lost or changed key)."""
    connections = [
        connection.name
        for connection in Connection.objects.exclude(
            secrets_encrypted="", secret_headers_encrypted=""
        ).only("name", "secrets_encrypted", "secret_headers_encrypted")
        if not _decrypts(connection.secrets, connection.secret_headers)
    ]
    flows = [
        flow.name
        for flow in Flow.objects.exclude(secret_variables_encrypted="").only(
            "name", "secret_variables_encrypted"
        )
        if not _decrypts(flow.secret_variables)
    ]
    return connections, flows


def _decrypts(*reads) -> bool:
    try:
        for read in reads:
            read()
    except Undecryptable:
        return False
    return True
