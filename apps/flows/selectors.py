"""Reads for flows: which resources a flow uses, and which flows use a resource.

Flows reference exports, imports, scripts and sub-flows inside their JSON documents, so
"who uses this" is answered by reading the flows' pipelines (one query for all flows).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from apps.flows.models import Connection, Export, Flow, Import, Script
from apps.flows.pipeline import RESOURCES, as_id


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
        if not isinstance(processor, dict) or processor.get("type") not in RESOURCES:
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


def flows_using_connection(connection: Connection) -> list[Flow]:
    exports = Export.objects.filter(connection=connection).values_list("pk", flat=True)
    imports = Import.objects.filter(connection=connection).values_list("pk", flat=True)
    by_pk = {flow.pk: flow for flow in flows_using("export", exports)}
    by_pk.update((flow.pk, flow) for flow in flows_using("import", imports))
    return sorted(by_pk.values(), key=str)


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
    exports = list(Export.objects.filter(pk__in=found.export).select_related("connection"))
    imports = list(Import.objects.filter(pk__in=found.import_).select_related("connection"))
    connections = {r.connection.pk: r.connection for r in (*exports, *imports)}
    return Dependencies(
        exports=exports,
        imports=imports,
        scripts=list(Script.objects.filter(pk__in=found.script)),
        connections=sorted(connections.values(), key=lambda c: c.pk),
        flows=list(Flow.objects.filter(pk__in=found.flow).select_related("application")),
        used_by=flows_using("flow", [flow.pk]),
    )
