"""Immutable descriptions of a flow and its steps, built once per run from the models."""

from dataclasses import dataclass, field
from typing import Any

from apps.flows.outbound.values import ConnectionConfig


@dataclass(frozen=True)
class ExportSpec:
    id: int
    name: str
    connection: ConnectionConfig
    method: str = "GET"
    relative_uri: str = ""
    query: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    body: Any = None
    resource_path: str = ""
    paging: str = "none"  # none | page | nextlink | cursor
    page_size: int | None = None
    page_size_param: str = "pageSize"
    page_param: str = "page"
    next_path: str = ""
    cursor_param: str = "cursor"
    max_pages: int = 10_000
    # On a records connection: {"_recordTypeId", "filters", "ordering"} (templates allowed)
    records: dict | None = None


@dataclass(frozen=True)
class ImportSpec:
    id: int
    name: str
    connection: ConnectionConfig
    method: str = "POST"
    relative_uri: str = ""
    headers: dict = field(default_factory=dict)
    body: Any = None  # None: the record itself
    batch_size: int = 1
    # On a records connection: {"_recordTypeId", "action", "keyField"}
    records: dict | None = None


@dataclass(frozen=True)
class ScriptSpec:
    id: int
    name: str
    source: str


@dataclass(frozen=True)
class SubflowSpec:
    id: int
    name: str


@dataclass(frozen=True)
class FieldMapping:
    extract: str
    generate: str


@dataclass(frozen=True)
class ListMapping:
    generate: str
    fields: tuple[FieldMapping, ...] = ()


@dataclass(frozen=True)
class ResponseMapping:
    fields: tuple[FieldMapping, ...] = ()
    lists: tuple[ListMapping, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.fields or self.lists)


@dataclass(frozen=True)
class StepSpec:
    kind: str  # a key of steps.STEP_KINDS
    path: str  # "pageGenerators[0]", "pageProcessors[2]": how the flow document names it
    position: int  # 0.. over generators then processors
    name: str
    resource: ExportSpec | ImportSpec | ScriptSpec | SubflowSpec
    proceed_on_failure: bool = False
    response_mapping: ResponseMapping = ResponseMapping()
    function: str = "main"


@dataclass(frozen=True)
class FlowSpec:
    id: int
    name: str
    generators: tuple[StepSpec, ...]
    processors: tuple[StepSpec, ...]
    variables: dict = field(default_factory=dict)
    skip_retries: bool = False
