"""What a run carries: its trigger, variables, deadline, adapters and what it recorded."""

import copy
import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from apps.flows.engine.progress import ProgressMeter, ProgressPort
from apps.flows.outbound.retry import RetryPolicy
from apps.flows.outbound.values import ConnectionConfig, HttpRequest, HttpResponse
from apps.flows.sandbox.results import ScriptResult

SAMPLE_RECORDS = 3
MAX_DEBUG_LINES = 500
MAX_ERRORS_KEPT = 1000


class HttpPort(Protocol):
    def send(
        self,
        connection: ConnectionConfig,
        request: HttpRequest,
        *,
        deadline: float | None = None,
        retry: RetryPolicy | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> HttpResponse: ...


class ScriptPort(Protocol):
    def call(
        self,
        source: str,
        function: str,
        argument: Any,
        *,
        timeout_ms: int | None = None,
        owner: str | None = None,
    ) -> ScriptResult: ...


@dataclass
class SubflowResult:
    process_id: str
    status: str  # an execution status
    output: list = field(default_factory=list)
    status_code: int | None = None
    error: str = ""


class SubflowPort(Protocol):
    def run(self, flow_id: int, record: Any, timeout_ms: int | None) -> SubflowResult: ...


class RecordsError(Exception):
    """A records read or write that cannot be done (bad filter, invalid record, unknown id)."""


class RecordsPort(Protocol):
    """Flowsite's own data tables, for exports and imports on a `records` connection."""

    def read(self, query: dict, *, after: str | None, limit: int) -> tuple[list, str | None]:
        """A page of record documents and the cursor of the next page (None at the end)."""
        ...

    def write(self, target: dict, data: Any) -> dict:
        """Create, update, upsert or delete one record; its record document."""
        ...


class RunStopped(Exception):
    """The run must stop between records or steps."""


class DeadlineReached(RunStopped):
    pass


class RunCancelled(RunStopped):
    pass


class RunAborted(Exception):
    """A script called error(message, status), or a page generator failed: the run fails."""

    def __init__(self, message: str, *, status: int = 500):
        super().__init__(message)
        self.message = message
        self.status = status


def sample(record: Any) -> Any:
    return copy.deepcopy(record)


@dataclass
class StepStats:
    path: str
    kind: str
    name: str
    records_in: int = 0
    records_out: int = 0
    errors: int = 0
    duration_ms: float = 0.0
    debug_lines: list[str] = field(default_factory=list)
    lines_dropped: int = 0
    sample_in: list = field(default_factory=list)
    sample_out: list = field(default_factory=list)
    # Every record in and out, kept only when the run is recorded for flow tests.
    kept_in: list | None = None
    kept_out: list | None = None

    def took_in(self, records: list) -> None:
        self.records_in += len(records)
        if self.kept_in is not None:
            self.kept_in.extend(sample(record) for record in records)
        for record in records[: SAMPLE_RECORDS - len(self.sample_in)]:
            self.sample_in.append(sample(record))

    def gave_out(self, records: list) -> None:
        self.records_out += len(records)
        if self.kept_out is not None:
            self.kept_out.extend(sample(record) for record in records)
        for record in records[: SAMPLE_RECORDS - len(self.sample_out)]:
            self.sample_out.append(sample(record))

    def log(self, lines: list[str]) -> None:
        """Keep a step's debug lines up to MAX_DEBUG_LINES, then one line counting the rest
        (it counted only the call that overflowed; later calls' lines went uncounted)."""
        kept = lines[: max(MAX_DEBUG_LINES - len(self.debug_lines), 0)]
        self.debug_lines.extend(kept)
        if dropped := len(lines) - len(kept):
            if self.lines_dropped:  # the count is the last line already
                self.debug_lines.pop()
            self.lines_dropped += dropped
            self.debug_lines.append(f"… {self.lines_dropped} more lines not kept")


@dataclass
class RecordedError:
    step_path: str
    step_name: str
    message: str
    record: Any = None
    http_status: int | None = None
    body_excerpt: str = ""
    retriable: bool = False
    outbound: bool = False  # an outbound call failed it (the run answers 502 if it fails)


@dataclass
class Recorder:
    """Collects step statistics and errors in memory; the caller persists them once.

    The run's own thread writes it: steps that call out in parallel hand each record's
    result or failure back to that thread, in page order (engine.parallel). `stats` and
    `error` also hold a lock, so a call from another thread cannot lose a count or an
    error either; StepStats are updated by the run's thread only.
    """

    steps: dict[str, StepStats] = field(default_factory=dict)
    errors: list[RecordedError] = field(default_factory=list)
    error_count: int = 0
    ignored: int = 0  # records a script dropped on purpose
    keep_records: bool = False  # a recorded run keeps every step's records (flow tests)
    # The secrets of the connections this run called (as a server might quote them back):
    # left out of everything the run stores and answers, wherever an answer quotes them.
    secrets: set[str] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def saw_secrets(self, secrets) -> None:
        """A connection's secrets went out with a call (from any thread of the run)."""
        with self._lock:
            self.secrets.update(secrets)

    def stats(self, step) -> StepStats:
        stats = self.steps.get(step.path)
        if stats is None:
            with self._lock:
                stats = self.steps.get(step.path)
                if stats is None:
                    stats = self.steps[step.path] = StepStats(step.path, step.kind, step.name)
                    if self.keep_records:
                        stats.kept_in, stats.kept_out = [], []
        return stats

    def error(self, step, message: str, **details: Any) -> None:
        stats = self.stats(step)
        with self._lock:
            self.error_count += 1
            stats.errors += 1
            if len(self.errors) >= MAX_ERRORS_KEPT:
                return
            if details.get("record") is not None:  # as it was when it failed
                details["record"] = sample(details["record"])
            self.errors.append(RecordedError(step.path, step.name, message, **details))


def _no_heartbeat() -> None:
    pass


@dataclass
class RunContext:
    process_id: str
    http: HttpPort
    scripts: ScriptPort
    trigger: dict = field(default_factory=dict)
    variables: dict = field(default_factory=dict)
    deadline: float | None = None  # a clock() value
    retry: RetryPolicy | None = field(default_factory=RetryPolicy)
    cancelled: Callable[[], bool] = lambda: False
    heartbeat: Callable[[], None] = lambda: None
    clock: Callable[[], float] = time.monotonic
    recorder: Recorder = field(default_factory=Recorder)
    subflows: SubflowPort | None = None
    records: RecordsPort | None = None
    script_owner: str | None = None  # the flow: its scripts share one flow's part of the pool
    progress: ProgressPort | None = None  # told the run's counters now and then (engine.progress)
    # Set by the runner when `progress` is given; a worker's view has none (not in replace()).
    meter: ProgressMeter | None = field(default=None, init=False, repr=False, compare=False)
    # The step running now (set by the runner): recorded and replayed calls name it.
    current_step: str = field(default="", init=False, compare=False)

    def worker_view(self, stopped: Callable[[], bool]) -> "RunContext":
        """This context as a worker thread of a parallel step sees it (engine.parallel).

        The same run, deadline, clock and outbound client, but `cancelled` is the run
        thread's stop signal: the run's own check may ask the database, which belongs to
        the run's thread (Django connections are per thread). Nothing that touches the
        database either: data tables and sub-flows stay on the run's thread.
        """
        return dataclasses.replace(
            self,
            cancelled=stopped,
            heartbeat=_no_heartbeat,
            records=None,
            subflows=None,
            progress=None,
        )

    def checkpoint(self) -> None:
        """Between records and steps: stop at the deadline or on cancellation."""
        if self.deadline is not None and self.clock() >= self.deadline:
            raise DeadlineReached
        if self.cancelled():
            raise RunCancelled
        self.heartbeat()
        if self.meter is not None:
            self.meter.tick()

    def remaining_ms(self) -> int | None:
        if self.deadline is None:
            return None
        return max(1, int((self.deadline - self.clock()) * 1000))

    def scope(self, **extra: Any) -> dict:
        return {
            "variables": self.variables,
            "trigger": self.trigger,
            "processId": self.process_id,
            **extra,
        }

    def send(self, connection: ConnectionConfig, request: HttpRequest) -> HttpResponse:
        response = self.http.send(
            connection,
            request,
            deadline=self.deadline,
            retry=self.retry,
            cancelled=self.cancelled,
        )
        if response.secrets:
            self.recorder.saw_secrets(response.secrets)
        return response
