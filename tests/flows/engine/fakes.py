"""In-memory adapters for the engine's ports: no network, no sandbox process."""

import json
from collections.abc import Callable
from typing import Any

from apps.flows.engine.spec import (
    ExportSpec,
    FieldMapping,
    FlowSpec,
    ImportSpec,
    ResponseMapping,
    ScriptSpec,
    StepSpec,
)
from apps.flows.outbound import ConnectionConfig, HttpResponse, HttpStatusError, OutboundError
from apps.flows.sandbox import ScriptResult

CONNECTION = ConnectionConfig(key="test", base_uri="https://api.test")


def json_response(body: Any, status: int = 200, url: str = "https://api.test/") -> HttpResponse:
    return HttpResponse(
        status=status,
        headers={"content-type": "application/json"},
        body=json.dumps(body).encode(),
        url=url,
        elapsed_ms=1.0,
    )


class FakeHttp:
    """Routes "METHOD path" to a handler(request) returning a body, or an HttpResponse."""

    def __init__(self, routes: dict[str, Callable]):
        self.routes = routes
        self.calls: list = []

    def send(self, connection, request, *, deadline=None, retry=None, cancelled=None):
        self.calls.append(request)
        path = request.url.split("?")[0]
        handler = self.routes.get(f"{request.method} {path}")
        if handler is None:
            raise HttpStatusError(
                f"404 from {path}", retriable=False, status=404, body_excerpt="not found"
            )
        result = handler(request)
        if isinstance(result, OutboundError):
            raise result
        return result if isinstance(result, HttpResponse) else json_response(result)


class FakeScripts:
    """Runs a Python function registered under a script's source text."""

    def __init__(self, functions: dict[str, Callable]):
        self.functions = functions

    def call(self, source, function, argument, *, timeout_ms=None, owner=None):
        value = self.functions[source](json.loads(json.dumps(argument)))
        return ScriptResult(value=value, debug=[f"ran {source}"])


def export(name: str, uri: str, **options) -> ExportSpec:
    return ExportSpec(id=1, name=name, connection=CONNECTION, relative_uri=uri, **options)


def record_import(name: str, uri: str, **options) -> ImportSpec:
    return ImportSpec(id=2, name=name, connection=CONNECTION, relative_uri=uri, **options)


def script(name: str) -> ScriptSpec:
    return ScriptSpec(id=3, name=name, source=name)


def flow(generators=(), processors=(), **options) -> FlowSpec:
    """A FlowSpec from (kind, resource, extras) tuples."""
    steps_g = tuple(
        StepSpec(kind="export", path=f"pageGenerators[{i}]", position=i, name=r.name, resource=r)
        for i, r in enumerate(generators)
    )
    steps_p = []
    for i, (kind, resource, extras) in enumerate(processors):
        mapping = extras.pop("fields", None)
        steps_p.append(
            StepSpec(
                kind=kind,
                path=f"pageProcessors[{i}]",
                position=len(steps_g) + i,
                name=resource.name,
                resource=resource,
                response_mapping=ResponseMapping(
                    fields=tuple(FieldMapping(e, g) for e, g in (mapping or []))
                ),
                **extras,
            )
        )
    return FlowSpec(
        id=1, name="test flow", generators=steps_g, processors=tuple(steps_p), **options
    )
