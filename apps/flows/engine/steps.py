"""Step kinds: one small class each, registered by the `type` the flow document uses.

A step takes a page (a list of records) and returns the page for the next step. Records
are isolated: one that fails becomes a recorded error and leaves the page, unless the
processor says `proceedOnFailure`; the others go on.
"""

from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any
from urllib.parse import urljoin, urlsplit

from apps.flows.engine.context import DeadlineReached, RecordsError, RunAborted, RunContext
from apps.flows.engine.mapping import apply_mapping
from apps.flows.engine.parallel import outcomes
from apps.flows.engine.paths import get_path
from apps.flows.engine.spec import ExportSpec, ImportSpec, ScriptSpec, StepSpec, SubflowSpec
from apps.flows.engine.templates import render, render_string
from apps.flows.outbound.errors import DeadlineExceeded, OutboundError
from apps.flows.outbound.values import HttpRequest, HttpResponse
from apps.flows.sandbox.results import ScriptAbort, ScriptError

STEP_KINDS: dict[str, type["Step"]] = {}
# A script stopped by the sandbox (CPU time, memory, a crashed sandbox) fails the run.
SANDBOX_LIMITS = frozenset({"timeout", "memory", "crashed"})
SANDBOX_BUSY = "busy"  # no sandbox process free for the flow in time: 503, retry later


def register(kind: str):
    def decorate(cls: type["Step"]) -> type["Step"]:
        cls.kind = kind
        STEP_KINDS[kind] = cls
        return cls

    return decorate


class StepFailed(Exception):
    """One record (or batch) failed this step; carries what the error record needs."""

    def __init__(
        self, message: str, *, http_status=None, body_excerpt="", retriable=False, outbound=False
    ):
        super().__init__(message)
        self.message = message
        self.details = {
            "http_status": http_status,
            "body_excerpt": body_excerpt or "",
            "retriable": retriable,
            "outbound": outbound,
        }

    @classmethod
    def from_outbound(cls, step: StepSpec, error: OutboundError, ctx: RunContext) -> "StepFailed":
        """A failed call fails its record, unless the run itself has to stop (then the run
        says what it was waiting for)."""
        if isinstance(error, DeadlineExceeded):
            raise DeadlineReached(f"{step.name}: {error}") from None
        try:
            ctx.checkpoint()  # a timeout capped by the deadline, or a cancelled call, stops it
        except DeadlineReached:
            raise DeadlineReached(f"{step.name}: {error}") from None
        return cls(
            f"{step.name}: {error}",
            http_status=error.status,
            body_excerpt=error.body_excerpt or "",
            retriable=error.retriable,
            outbound=True,
        )


class Step:
    kind = ""

    def __init__(self, spec: StepSpec):
        self.spec = spec

    def process(self, page: list, ctx: RunContext) -> list:
        raise NotImplementedError

    def each_record(
        self,
        page: list,
        ctx: RunContext,
        handle: Callable[[Any, RunContext], Any],
        *,
        concurrency: int = 1,
    ) -> list:
        """Apply `handle(record, ctx)` to every record, isolating failures, keeping order.

        With `concurrency` > 1, up to that many records are handled at once on worker
        threads, which get a worker's view of the context (engine.parallel): `handle` must
        use the context it is given, not the run's.
        """
        out = []
        with closing(
            outcomes(page, ctx, handle, isolated=StepFailed, concurrency=concurrency)
        ) as results:
            for record, result, failure in results:
                if failure is None:
                    out.append(result)
                    continue
                ctx.recorder.error(self.spec, failure.message, record=record, **failure.details)
                if self.spec.proceed_on_failure:
                    out.append(record)
        return out


# --- HTTP exports -------------------------------------------------------------------------


def records_in(export: ExportSpec, body: Any) -> list:
    found = get_path(body, export.resource_path) if export.resource_path else body
    if found is None:
        return []
    return found if isinstance(found, list) else [found]


def export_request(export: ExportSpec, scope: dict, extra_query: dict) -> HttpRequest:
    return HttpRequest(
        method=export.method,
        url=render_string(export.relative_uri, scope, encode=True),
        headers={key: str(value) for key, value in render(export.headers, scope).items()},
        query={**render(export.query, scope), **extra_query},
        json=render(export.body, scope) if export.body is not None else None,
    )


def same_origin(export: ExportSpec, url: str) -> str:
    """A next link may not leave the connection's host: its credentials would follow it."""
    base, target = urlsplit(export.connection.base_uri), urlsplit(url)
    if (target.scheme, target.netloc.lower()) != (base.scheme, base.netloc.lower()):
        raise OutboundError(
            f"The next link {url} leaves the connection's host {base.netloc}; it was not "
            "followed, so the connection's credentials are not sent elsewhere.",
            retriable=False,
        )
    return url


def mapped(step: StepSpec, record: Any, source: dict) -> Any:
    """Apply the step's responseMapping; a mapping that cannot apply fails the record."""
    if not step.response_mapping:
        return record
    if not isinstance(record, dict):
        raise StepFailed(f"{step.name}: responseMapping needs an object record, got {record!r:.80}")
    try:
        return apply_mapping(record, step.response_mapping, source)
    except ValueError as exc:
        raise StepFailed(f"{step.name}: responseMapping: {exc}") from None


def records_pages(export: ExportSpec, ctx: RunContext, scope: dict) -> Iterator[tuple[list, int]]:
    """Pages of a records export: the data table's records matching its filters."""
    if ctx.records is None:
        raise RecordsError("data tables cannot be read here.")
    query = render(export.records, scope)
    limit = min(export.page_size or 100, 1000)
    after = None
    for _ in range(export.max_pages):
        records, after = ctx.records.read(query, after=after, limit=limit)
        yield records, 200
        if after is None:
            return
        ctx.checkpoint()


def export_pages(export: ExportSpec, ctx: RunContext, scope: dict) -> Iterator[tuple[list, int]]:
    """Pages of records with the status they came with, following the export's paging."""
    if export.records is not None:
        yield from records_pages(export, ctx, scope)
        return
    extra: dict = {}
    if export.page_size and export.paging != "none":
        extra[export.page_size_param] = export.page_size
    page_number = 1
    next_url: str | None = None
    for _ in range(export.max_pages):
        if export.paging == "page":
            extra[export.page_param] = page_number
        request = export_request(export, scope, extra)
        if next_url:
            request.url, request.query = next_url, {}
        response = ctx.send(export.connection, request)
        body = response.json()
        records = records_in(export, body)
        yield records, response.status
        if export.paging == "none" or not records:
            return
        if export.paging == "page":
            if export.page_size and len(records) < export.page_size:
                return
            page_number += 1
        elif export.paging == "nextlink":
            link = get_path(body, export.next_path)
            if not link:
                return
            next_url = same_origin(export, urljoin(response.url, str(link)))
        elif export.paging == "cursor":
            cursor = get_path(body, export.next_path)
            if cursor in (None, ""):
                return
            extra[export.cursor_param] = cursor
        ctx.checkpoint()


def generator_pages(step: StepSpec, ctx: RunContext) -> Iterator[list]:
    """A page generator: the export's pages; a failure here fails the run."""
    try:
        for records, _ in export_pages(step.resource, ctx, ctx.scope(record={})):
            yield records
    except OutboundError as error:
        failure = StepFailed.from_outbound(step, error, ctx)
        ctx.recorder.error(step, failure.message, **failure.details)
        raise RunAborted(f"Page generator {step.name} failed: {error}", status=502) from None
    except RecordsError as error:
        ctx.recorder.error(step, f"{step.name}: {error}")
        raise RunAborted(f"Page generator {step.name} failed: {error}", status=500) from None


@register("export")
class LookupStep(Step):
    """An export used as a processor: called per record, its result mapped into the record.

    On an HTTP connection, up to the connection's `concurrency` records are looked up at
    once; a data tables lookup reads the database, which stays on the run's thread.
    """

    def process(self, page: list, ctx: RunContext) -> list:
        export: ExportSpec = self.spec.resource
        concurrency = export.connection.concurrency if export.records is None else 1

        def lookup(record: dict, ctx: RunContext) -> dict:
            found: list = []
            status = None
            try:
                for records, page_status in export_pages(export, ctx, ctx.scope(record=record)):
                    found.extend(records)
                    status = page_status
            except OutboundError as error:
                raise StepFailed.from_outbound(self.spec, error, ctx) from None
            except RecordsError as error:
                raise StepFailed(f"{self.spec.name}: {error}") from None
            return mapped(self.spec, record, {"data": found, "statusCode": status})

        return self.each_record(page, ctx, lookup, concurrency=concurrency)


# --- HTTP imports -------------------------------------------------------------------------


def response_body(response: HttpResponse) -> Any:
    """An import's response as data: JSON when it is JSON, else its text (or None)."""
    if not response.body:
        return None
    if "json" in response.headers.get("content-type", ""):
        try:
            return response.json()
        except OutboundError:
            pass
    return response.text


@register("import")
class ImportStep(Step):
    """Sends records to the connection, one request per record or per batch."""

    def process(self, page: list, ctx: RunContext) -> list:
        spec: ImportSpec = self.spec.resource
        if spec.records is not None:  # a data table: one write per record

            def write_one(record: Any, ctx: RunContext) -> Any:
                if ctx.records is None:
                    raise StepFailed(f"{self.spec.name}: data tables cannot be written here.")
                data = record if spec.body is None else render(spec.body, ctx.scope(record=record))
                try:
                    stored = ctx.records.write(spec.records, data)
                except RecordsError as error:
                    raise StepFailed(f"{self.spec.name}: {error}", http_status=400) from None
                source = {"data": stored, "id": stored.get("RecordID"), "statusCode": 200}
                return mapped(self.spec, record, source)

            return self.each_record(page, ctx, write_one)
        if spec.batch_size <= 1:

            def send_one(record: Any, ctx: RunContext) -> Any:
                response = self.send(spec, ctx, ctx.scope(record=record), record)
                return self.map_response(record, response)

            return self.each_record(page, ctx, send_one)
        out = []
        for start in range(0, len(page), spec.batch_size):
            ctx.checkpoint()
            batch = page[start : start + spec.batch_size]
            try:
                self.send(spec, ctx, ctx.scope(records=batch, record=batch[0]), batch)
                out.extend(batch)
            except StepFailed as failure:
                for record in batch:
                    ctx.recorder.error(self.spec, failure.message, record=record, **failure.details)
                if self.spec.proceed_on_failure:
                    out.extend(batch)
        return out

    def send(self, spec: ImportSpec, ctx: RunContext, scope: dict, payload: Any) -> HttpResponse:
        request = import_request(spec, ctx, scope, payload)
        try:
            return ctx.send(spec.connection, request)
        except OutboundError as error:
            raise StepFailed.from_outbound(self.spec, error, ctx) from None

    def map_response(self, record: Any, response: HttpResponse) -> Any:
        if not self.spec.response_mapping:
            return record
        body = response_body(response)
        source = {
            "data": body,
            "id": body.get("id") if isinstance(body, dict) else None,
            "statusCode": response.status,
        }
        return mapped(self.spec, record, source)


def import_request(spec: ImportSpec, ctx: RunContext, scope: dict, payload: Any) -> HttpRequest:
    """The request an HTTP import sends for one record (`payload` a record) or one batch (a
    list): its body is the payload itself, or its body template rendered per record."""
    if spec.body is None:
        body = payload
    elif isinstance(payload, list):
        body = [render(spec.body, ctx.scope(record=item)) for item in payload]
    else:
        body = render(spec.body, scope)
    return HttpRequest(
        method=spec.method,
        url=render_string(spec.relative_uri, scope, encode=True),
        headers={key: str(value) for key, value in render(spec.headers, scope).items()},
        json=body,
    )


# --- Scripts ------------------------------------------------------------------------------


@register("script")
class ScriptStep(Step):
    """Calls the script's function with ctx = {trigger, records, variables, processId}.

    The return value is the page's new records: an array, one object for one record,
    null/[] to drop them. A script works on the whole page, so when it fails every record
    of the page fails with it.
    """

    def process(self, page: list, ctx: RunContext) -> list:
        script: ScriptSpec = self.spec.resource
        ctx.checkpoint()
        argument = {
            "trigger": ctx.trigger,
            "records": page,
            "variables": ctx.variables,
            "processId": ctx.process_id,
        }
        stats = ctx.recorder.stats(self.spec)
        try:
            result = ctx.scripts.call(
                script.source,
                self.spec.function,
                argument,
                timeout_ms=ctx.remaining_ms(),
                owner=ctx.script_owner,  # whose share of the sandbox the call takes
            )
        except ScriptAbort as abort:
            stats.log(abort.debug or [])
            ctx.recorder.error(self.spec, f"Script {script.name}: error(): {abort.message}")
            raise RunAborted(abort.message, status=abort.status) from None
        except ScriptError as error:
            stats.log(error.debug or [])
            where = f" at line {error.line}" if error.line else ""
            message = f"Script {script.name}{where}: {error.message}"
            try:
                ctx.checkpoint()  # stopped by the run's deadline (or cancelled): the run stops
            except DeadlineReached:
                raise DeadlineReached(message) from None
            if error.kind == SANDBOX_BUSY:  # this flow's share of the sandbox is full: retry
                ctx.recorder.error(self.spec, message)
                raise RunAborted(message, status=503) from None
            if error.kind in SANDBOX_LIMITS:  # not the records' fault: the run fails
                ctx.recorder.error(self.spec, message)
                raise RunAborted(message, status=500) from None
            for record in page:
                ctx.recorder.error(self.spec, message, record=record)
            return page if self.spec.proceed_on_failure else []
        stats.log(result.debug)
        value = result.value
        records = [] if value is None else value if isinstance(value, list) else [value]
        ctx.recorder.ignored += max(0, len(page) - len(records))
        return records


# --- Sub-flows ----------------------------------------------------------------------------


@register("flow")
class SubflowStep(Step):
    """Runs another flow per record (the record is its input), within this run's deadline,
    and merges its output records into the record via responseMapping (source:
    `{"data": [output records], "processId", "statusCode"}`)."""

    def process(self, page: list, ctx: RunContext) -> list:
        subflow: SubflowSpec = self.spec.resource

        def call(record: Any, ctx: RunContext) -> Any:
            if ctx.subflows is None:
                raise StepFailed(f"{subflow.name}: sub-flows cannot run here.")
            result = ctx.subflows.run(subflow.id, record, ctx.remaining_ms())
            if result.status != "succeeded":
                ctx.checkpoint()  # the child ran out of this run's time: this run stops too
                run = f"sub-flow run {result.process_id}" if result.process_id else "sub-flow"
                raise StepFailed(
                    f"{subflow.name}: {run} {result.status}: {result.error}",
                    http_status=result.status_code,
                )
            source = {
                "data": result.output,
                "processId": result.process_id,
                "statusCode": result.status_code,
            }
            return mapped(self.spec, record, source)

        return self.each_record(page, ctx, call)
