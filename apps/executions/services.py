"""Writes for executions: create, run a claimed run and record its outcome, cancel,
recover, purge. Which runs start, and how, is the front door's (launch.py)."""

import copy
import dataclasses
import json
import logging
import math
import threading
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.core import group_commit, rows, timers
from apps.core.db_errors import lock_timed_out
from apps.core.redaction import scrub, secret_values, without_secrets
from apps.executions import recording
from apps.executions.errors import AlreadyFinished
from apps.executions.models import Execution, ExecutionError, StepRun
from apps.flows import crypto, spec_cache
from apps.flows.engine.capture import Tape
from apps.flows.engine.context import RecordedError, RunContext, StepStats, SubflowPort
from apps.flows.engine.runner import Outcome, run_flow
from apps.flows.engine.spec import FlowSpec
from apps.flows.models import Flow
from apps.flows.outbound import RetryPolicy, get_client
from apps.flows.outbound.errors import quoted_secret_forms
from apps.flows.pipeline import PipelineError
from apps.flows.sandbox import get_pool
from apps.records.connections import DataTables

logger = logging.getLogger(__name__)

Status = Execution.Status
Trigger = Execution.Trigger
# Runs whose caller reads the records answer with them; the others only count them.
OUTPUT_TRIGGERS = frozenset({Trigger.API, Trigger.TEST, Trigger.EXECUTE, Trigger.SUBFLOW})
HEARTBEAT_SECONDS = 5.0
CANCEL_CHECK_SECONDS = 1.0
DEFERRED_SECONDS = 0.9  # a deferred run's row is written by then if it is still running
MAX_STORED_RECORD_BYTES = 8192
STORE_RETRY_PAUSES = (0.2, 1.0, 3.0)  # seconds before storing an outcome is tried again


def create_execution(
    *,
    flow: Flow,
    trigger: str,
    caller=None,
    caller_label: str = "",
    caller_ip: str | None = None,
    mode: str = Execution.Mode.ASYNC,
    input: Any = None,
    request: dict | None = None,
    variables: dict | None = None,
    options: dict | None = None,
    parent: Execution | None = None,
    retry_of: Execution | None = None,
    idempotency_key: str = "",
    caller_scope: str = "",
    request_fingerprint: str = "",
    timeout_ms: int | None = None,
    status: str = Status.QUEUED,
    for_worker: bool = False,
    steps_see: dict | None = None,
    deferred: bool = False,
) -> Execution:
    """A new run. `status=running` claims it for this process at once (a sync call);
    `for_worker` records now the Celery task id it will be queued under (its own id).
    `deferred` (a running run only) writes nothing now: the run is inserted when it is
    recorded, or as running after DEFERRED_SECONDS if it is still running (`perform`).

    `request` and `input` are stored redacted; `steps_see` is what the steps get instead
    (`{"request", "input"}` with their secrets), kept only until the run ends."""
    now = timezone.now() if status == Status.RUNNING else None
    # Found once: the stored request and input, and everything the run stores later.
    secrets = frozenset(secret_values(input) | secret_values(request))
    execution = Execution(
        status=status,
        started_at=now,
        heartbeat_at=now,
        flow=flow,
        flow_name=str(flow),
        trigger=trigger,
        mode=mode,
        caller=caller,
        caller_label=caller_label or (caller.get_username() if caller else "anonymous"),
        caller_ip=caller_ip,
        input=storable(scrub(input, secrets)),
        request=storable(scrub(request, secrets)) if request is not None else None,
        variables=variables or {},
        options=options or {},
        parent=parent,
        retry_of=retry_of,
        idempotency_key=idempotency_key,
        caller_scope=caller_scope,
        request_fingerprint=request_fingerprint,
        timeout_ms=timeout_ms or flow.timeout_ms,
    )
    if for_worker:
        execution.celery_task_id = str(execution.pk)
    execution.steps_secrets = secrets
    if steps_see is not None:
        _seal(execution, steps_see)
    # On the hot path of every call: the foreign keys come from loaded objects and the
    # idempotency constraint is the database's to decide (only it sees a race), so only the
    # plain fields are checked here.
    execution.clean_fields(exclude={"flow", "caller", "parent", "retry_of"})
    if deferred and status == Status.RUNNING:
        execution.created_at = now  # kept when the row is written later (_insert)
        return execution
    if connection.in_atomic_block:  # part of the caller's transaction, no savepoint
        _insert(execution)  # (the front door's checks for a key or a limit, Execute())
    else:
        group_commit.run(lambda: _insert(execution))
    return execution


def _insert(execution: Execution) -> None:
    """Insert a run whose row was not written yet, keeping its own created_at."""
    rows.insert([execution])


class _DeferredInsert:
    """A deferred run still running after DEFERRED_SECONDS gets its running row then, so
    that cancel, the live run page and stale recovery see it (issue "Hot path": any run
    writes its running row at the start, or at 1 s at the latest)."""

    def __init__(self, execution: Execution):
        self.execution = execution
        self.lock = threading.Lock()
        self.stopped = False
        self.timer: timers.Handle | None = None

    def start(self) -> None:
        self.timer = timers.call_later(DEFERRED_SECONDS, self._insert)

    def _insert(self) -> None:
        try:
            with self.lock:
                if self.stopped:
                    return
                row = copy.copy(self.execution)  # the run's thread keeps its own object
                try:
                    _insert(row)
                except DatabaseError:  # written with its outcome at the end instead
                    logger.warning("Running row of execution %s not written", row.pk, exc_info=True)
                    return
                self.execution._state.adding = False
        finally:
            connection.close()

    def stop(self) -> None:
        """After this, the row is written (adding False) or never will be by the timer."""
        with self.lock:
            self.stopped = True
        if self.timer is not None:
            self.timer.cancel()


class _Heartbeat(threading.Thread):
    """Marks the execution alive every few seconds, even while a step waits on the network,
    so recovery can tell a slow run from one whose worker died."""

    def __init__(self, execution_id):
        super().__init__(daemon=True, name=f"heartbeat-{execution_id}")
        self.execution_id = execution_id
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(HEARTBEAT_SECONDS):
                try:
                    Execution.objects.filter(pk=self.execution_id, status=Status.RUNNING).update(
                        heartbeat_at=timezone.now()
                    )
                except DatabaseError:  # e.g. a locked SQLite file: beat again next time
                    logger.warning(
                        "Heartbeat of execution %s failed", self.execution_id, exc_info=True
                    )
        finally:
            connection.close()


class _ProgressWriter:
    """The engine's ProgressPort for one run (engine.progress decides when it reports): each
    report is one UPDATE of the run's row, on the run's thread, with the steps' counters,
    the current step, the run's counts so far and a heartbeat. The run page polls them."""

    def __init__(self, execution: Execution):
        self.execution = execution

    def report(self, progress: dict) -> None:
        if self.execution._state.adding:  # a deferred run whose row is not written yet
            return
        try:
            Execution.objects.filter(pk=self.execution.pk, status=Status.RUNNING).update(
                progress=progress,
                num_success=progress["numSuccess"],
                num_error=progress["numError"],
                heartbeat_at=timezone.now(),
            )
        except DatabaseError:  # e.g. a locked SQLite file: the next report says it all
            logger.warning("Progress of execution %s not written", self.execution.pk, exc_info=True)


def _progress_port(execution: Execution) -> _ProgressWriter | None:
    """None for a run inside its caller's transaction (Execute()): nobody else could read
    its reports before it ends, and a failed write would break that transaction."""
    return None if connection.in_atomic_block else _ProgressWriter(execution)


def _cancel_check(execution: Execution):
    """A cheap `cancelled()` for the engine: asks the database at most once a second. A
    sub-flow's run stops when its parent (or the parent's parent) is cancelled too: the
    child went on to the end, and the parent's cancel waited for it (an outside probe)."""
    ids = execution.cancelled_with = _cancelled_with(execution)
    # A run just started is not cancelled; a sub-flow may start long after its parent was
    # (it waited for a slot), so it asks at its first checkpoint (it ran; an outside probe).
    asked = -math.inf if execution.trigger == Trigger.SUBFLOW else time.monotonic()
    last = {"at": asked, "value": False}

    def cancelled() -> bool:
        now = time.monotonic()
        if not last["value"] and now - last["at"] >= CANCEL_CHECK_SECONDS:
            last["at"] = now
            last["value"] = Execution.objects.filter(pk__in=ids, cancel_requested=True).exists()
        return last["value"]

    return cancelled


def _cancelled_with(execution: Execution) -> list:
    """The run, and the runs whose cancel stops it: the parents it runs as a sub-flow of
    (read from its parent's run in this process when there is one: a parent calls a
    sub-flow once per record)."""
    if execution.trigger == Trigger.SUBFLOW and Execution.parent.is_cached(execution):
        known = getattr(execution.parent, "cancelled_with", None)
        if known is not None:
            return [execution.pk, *known]
    ids, parent, trigger = [execution.pk], execution.parent_id, execution.trigger
    while trigger == Trigger.SUBFLOW and parent is not None and parent not in ids:
        ids.append(parent)
        row = Execution.objects.filter(pk=parent).values_list("parent_id", "trigger").first()
        parent, trigger = row if row is not None else (None, None)
    return ids


def _seal(execution: Execution, steps_see: dict) -> None:
    """Keep what the steps must see (secrets included) with the run: in memory for a run
    in this process, encrypted in the row for a worker's (wiped when the run ends)."""
    execution.steps_see = steps_see
    if execution.celery_task_id and scrub(steps_see, execution.steps_secrets) != steps_see:
        execution.sealed_trigger = crypto.encrypt_json(steps_see)


def _steps_see(execution: Execution) -> dict:
    seen = getattr(execution, "steps_see", None)
    if seen is None and execution.sealed_trigger:
        try:
            seen = crypto.decrypt_json(execution.sealed_trigger)
        except crypto.Undecryptable as exc:
            raise crypto.Undecryptable(f"The run's request: {exc}") from None
    if seen is None:
        seen = {"request": execution.request, "input": execution.input}
    return seen


def _trigger_data(execution: Execution, seen: dict) -> dict:
    args: dict = {}
    if seen.get("request") is not None:
        args["request"] = seen["request"]
    if seen.get("input") is not None:
        args["input"] = seen["input"]
    for window in ("startDate", "endDate"):  # a delta window: {{trigger.args.startDate}}
        if window in execution.options:
            args[window] = execution.options[window]
    return {"type": execution.trigger, "args": args}


def _only_exports(spec: FlowSpec, export_ids: list[str] | None) -> FlowSpec:
    """The run's `_exportIds`: only these page generators run."""
    if not export_ids:
        return spec
    wanted = set(export_ids)
    return dataclasses.replace(
        spec,
        generators=tuple(g for g in spec.generators if str(g.resource.id) in wanted),
    )


def _initial_record(seen: dict) -> Any:
    if isinstance(seen.get("input"), dict):
        return seen["input"]
    body = (seen.get("request") or {}).get("body")
    return body if isinstance(body, dict) else {}


def storable(value: Any) -> Any:
    """A JSON value every database accepts: no NaN/Infinity, no NUL characters (PostgreSQL
    stores none). A NUL becomes U+FFFD, as a lone surrogate does: visible, and two keys
    that differ by it stay two keys."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {storable(str(key)): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    if value is None or isinstance(value, bool | int):
        return value
    return str(value)


def claim(run: Execution) -> str:
    """Move a queued run to running: "claimed", "busy" (its flow is at its maximum
    concurrency: try again later) or "gone" (not queued any more). Claimed, the instance
    shows the status and times that were written."""
    # A run of a flow without maxConcurrency (as the run was read) has nothing to count:
    # one conditional UPDATE. Otherwise, or when it is not queued any more, the flow is
    # locked and its running runs counted. A maxConcurrency set between the read and this
    # UPDATE (a few hundred µs) is not seen: that one run may start past the new limit.
    flow = run.flow
    if (flow is None or not flow.max_concurrency) and _set_running(run):
        return "claimed"
    with transaction.atomic():
        queued = (
            Execution.objects.select_related("flow").filter(pk=run.pk, status=Status.QUEUED)
        ).first()
        if queued is None:
            return "gone"
        # The flow as it is now: deleted or disabled while the run waited, it must not run
        # (a run waiting for a slot ran the deleted flow, past its limit; an outside probe).
        flow = run.flow = queued.flow
        if flow is not None and flow.max_concurrency:
            # Lock the flow row: claims of one flow are serialised on every machine
            # (SQLite serialises all writers already).
            Flow.objects.select_for_update().filter(pk=flow.pk).first()
            running = Execution.objects.filter(flow=flow, status=Status.RUNNING).count()
            if running >= flow.max_concurrency:
                # A worker looked at it: its message is alive (see launch.requeue_lost_runs).
                Execution.objects.filter(pk=run.pk, status=Status.QUEUED).update(
                    heartbeat_at=timezone.now()
                )
                return "busy"
        return "claimed" if _set_running(run) else "gone"


def _set_running(run: Execution) -> bool:
    """queued → running, if it is still queued: of two processes racing for it (a
    redelivered task, a cancel), one wins. No join: the condition stays on the row being
    updated, which PostgreSQL checks again after waiting for a racing UPDATE's lock."""
    now = timezone.now()
    written = {"status": Status.RUNNING, "started_at": now, "heartbeat_at": now}
    if not rows.update(Execution, run.pk, written, status=Status.QUEUED):
        return False
    for name, value in written.items():
        setattr(run, name, value)
    return True


@dataclasses.dataclass
class RunResult:
    """What a run did, in memory, before it is recorded."""

    outcome: Outcome
    steps: dict[int, StepStats]
    errors: list[RecordedError]
    secrets: frozenset[str] = frozenset()
    # Never in the live answer either (see settle): the secrets of the connections it
    # called, and its secret variables (the caller's own request secrets may come back).
    unanswerable: frozenset[str] = frozenset()
    # A recorded run's tape and what it started from (flow tests); None for other runs.
    tape: Tape | None = None
    started_from: dict | None = None


def perform(
    execution: Execution, *, deadline_ms: int | None = None, subflows: SubflowPort | None = None
) -> RunResult:
    """Run an execution this process has claimed (status running); record nothing. Data
    tables a flow writes are written in the caller's transaction."""
    timeout_ms = deadline_ms or execution.timeout_ms or 0
    # A run shorter than half the stale threshold can never look stale: no heartbeat thread.
    heartbeat = None
    if timeout_ms > settings.FLOWSITE_STALE_EXECUTION_SECONDS * 500:
        heartbeat = _Heartbeat(execution.pk)
        heartbeat.start()
    late_insert = None
    if execution._state.adding:  # deferred: not written yet
        late_insert = _DeferredInsert(execution)
        late_insert.start()
    seen: dict = {}
    hidden: dict = {}
    try:
        seen = _steps_see(execution)
        hidden = execution.flow.secret_variables() if execution.flow else {}
        result = _run(execution, seen, hidden, deadline_ms, subflows)
    except Exception as exc:  # whatever a flow does, the run ends recorded
        logger.exception("Execution %s crashed while starting", execution.pk)
        result = RunResult(_crashed(exc), {}, [])
    finally:
        if late_insert is not None:
            late_insert.stop()
        if heartbeat is not None:
            heartbeat.stopped.set()
            heartbeat.join()
    # What the run must never store: the request's secrets and the secret variables.
    found = getattr(execution, "steps_secrets", None)  # set when created in this process
    if found is None:
        found = secret_values(seen)
    variables = secret_values({"secretVariables": hidden})
    result.unanswerable = result.unanswerable | variables
    result.secrets = frozenset(found | result.unanswerable)
    return result


def execute(
    execution: Execution,
    *,
    deadline_ms: int | None = None,
    subflows: SubflowPort | None = None,
    caller_waits: bool = True,
) -> Execution:
    """Run a claimed execution here and record its outcome. With `caller_waits` (a web
    request, answered 503 sooner rather than later), a write lock that timed out is not
    waited for again; on a worker (False) storing the outcome outlasts it."""
    result = perform(execution, deadline_ms=deadline_ms, subflows=subflows)
    try:
        _store(execution, result, patient=not caller_waits)
    except Exception as exc:  # a database error, or a value it refuses: never a lost run
        if lock_timed_out(exc) and caller_waits:
            # Another write would wait as long again: the caller is told (503). A run row
            # left running is failed by housekeeping; a sync run recorded only at its end
            # has none, so this line is its record.
            logger.error(
                "Execution %s of flow %r (%s): its outcome could not be stored: %s",
                execution.pk,
                execution.flow_name,
                execution.trigger,
                exc,
            )
            raise
        logger.exception("Execution %s: its outcome could not be stored", execution.pk)
        record(execution, RunResult(_crashed(exc, "Its outcome could not be stored"), {}, []))
    return execution


def _store(execution: Execution, result: RunResult, *, patient: bool) -> None:
    """Record the outcome. A connection that broke meanwhile (a database restarted, failed
    over, or a session ended by an administrator) is replaced and the real outcome tried
    again for a few seconds: the run's work is done, and failing it would invite a second
    run of it (an outside probe saw runs that had called out recorded failed). Unless
    `patient` (no caller waits), a write lock waited for its whole DB_LOCK_TIMEOUT_MS is
    not tried again: each try would wait as long (an outside probe's sync call waited 99 s
    on a locked SQLite)."""
    for pause in (*STORE_RETRY_PAUSES, None):
        try:
            record(execution, result)
            return
        except (OperationalError, InterfaceError) as exc:
            # Execute() records in its caller's transaction: the caller's to handle.
            if pause is None or connection.in_atomic_block or (lock_timed_out(exc) and not patient):
                raise
            logger.warning(
                "Execution %s: its outcome could not be stored; trying again in %s s",
                execution.pk,
                pause,
                exc_info=True,
            )
            # This thread's connection, if it is the one that broke (group commit may have
            # written on another thread's): the next attempt connects anew.
            if not connection.is_usable():
                connection.close()
            time.sleep(pause)
            if _landed(execution):  # committed, though the acknowledgement was lost
                return


def _landed(execution: Execution) -> bool:
    """Whether the run's row shows it ended (stored by the attempt whose answer was lost,
    or ended meanwhile by housekeeping, whose ending stands)."""
    try:
        ended = Execution.objects.filter(pk=execution.pk).exclude(status=Status.RUNNING).exists()
    except DatabaseError:
        return False
    if ended:
        execution._state.adding = False
    return ended


def give_up_waiting(execution: Execution) -> Execution:
    """A queued run whose caller's deadline passed before a slot was free."""
    Execution.objects.filter(pk=execution.pk, status=Status.QUEUED).update(
        status=Status.TIMED_OUT,
        finished_at=timezone.now(),
        status_code=504,
        error="The flow was at its maximum concurrency until the call's deadline; it never ran.",
    )
    execution.refresh_from_db()
    return execution


def output_of(execution: Execution) -> list:
    """A finished run's output records (a flow's own answer is one record)."""
    response = execution.response or {}
    if "statusCode" in response:
        return [response]
    return next(iter((response.get("data") or {}).values()), [])


def _crashed(exc: Exception, what: str = "The run could not start") -> Outcome:
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return Outcome(status=Status.FAILED, error=f"{what}: {first_line}", status_code=500)


def _run(
    execution: Execution, seen: dict, hidden: dict, deadline_ms: int | None, subflows
) -> RunResult:
    flow = execution.flow
    if flow is None:
        outcome = Outcome(status=Status.FAILED, error="The flow was deleted.", status_code=410)
        return RunResult(outcome, {}, [])
    if flow.disabled and execution.trigger != Trigger.TEST:
        message = "The flow was disabled before this run started."
        return RunResult(Outcome(status=Status.CANCELLED, error=message, status_code=409), {}, [])
    try:
        spec = _only_exports(spec_cache.flow_spec(flow), execution.options.get("_exportIds"))
    except PipelineError as exc:
        return RunResult(Outcome(status=Status.FAILED, error=str(exc), status_code=500), {}, [])
    timeout_ms = deadline_ms or execution.timeout_ms or flow.timeout_ms
    ctx = RunContext(
        subflows=subflows,
        records=DataTables(caller_id=execution.caller_id),
        process_id=str(execution.pk),
        http=get_client(),
        scripts=get_pool(),
        trigger=_trigger_data(execution, seen),
        variables={**spec.variables, **hidden, **(execution.variables or {})},
        deadline=time.monotonic() + timeout_ms / 1000,
        retry=None if spec.skip_retries else RetryPolicy(),
        cancelled=_cancel_check(execution),
        script_owner=f"flow {flow.pk}",
        progress=_progress_port(execution),
    )
    tape = recording.record_ports(ctx) if recording.records(execution) else None
    initial_record = _initial_record(seen)
    outcome = run_flow(
        spec,
        ctx,
        initial_record=initial_record,
        collect_output=execution.trigger in OUTPUT_TRIGGERS or tape is not None,
        resume=execution.options.get("resume"),
    )
    positions = {step.path: step.position for step in (*spec.generators, *spec.processors)}
    steps = {positions[path]: stats for path, stats in ctx.recorder.steps.items()}
    result = RunResult(outcome, steps, ctx.recorder.errors)
    if ctx.recorder.secrets:
        result.unanswerable = frozenset(quoted_secret_forms(ctx.recorder.secrets))
    if tape is not None:
        result.tape = tape
        result.started_from = {
            "trigger": ctx.trigger,
            "initialRecord": initial_record,
            "pipeline": recording.pipeline(spec),
        }
    return result


def _clip(record: Any, secrets: frozenset[str]) -> Any:
    """Keep stored records small and clean: a huge one is replaced by an excerpt."""
    record = storable(scrub(record, secrets))
    text = json.dumps(record)
    if len(text) <= MAX_STORED_RECORD_BYTES:
        return record
    return {"_truncated": True, "excerpt": text[:MAX_STORED_RECORD_BYTES]}


RESPONSE_TOO_LARGE = "The flow's answer is larger than FLOWSITE_MAX_RESPONSE_BYTES"


def settle(execution: Execution, result: RunResult) -> None:
    """Put a run's outcome on the execution in memory (`record` stores it)."""
    outcome, secrets = result.outcome, result.secrets
    execution.status = outcome.status
    execution.num_success = outcome.num_success
    execution.num_error = outcome.num_error
    execution.num_ignore = outcome.num_ignore
    execution.error = storable(scrub(outcome.error, secrets))
    execution.status_code = outcome.status_code
    document = storable(_response_document(execution, outcome))
    limit = settings.FLOWSITE_MAX_RESPONSE_BYTES
    if document is not None and (size := len(json.dumps(document))) > limit:
        # Neither sent nor stored: a web or worker process must not hold many of them.
        execution.status = Status.FAILED
        execution.status_code = 500
        execution.error = f"{RESPONSE_TOO_LARGE} ({size} > {limit} bytes)."
        document = None
    # The caller of this process gets the flow's answer as it set it, but for the secrets of
    # the connections it called (an API may quote its key back) and its secret variables
    # (an outside probe read one in a sync answer); what is stored (and polled later) is
    # redacted.
    execution.live_response = _content_without(document, result.unanswerable)
    execution.response = scrub(document, secrets)
    execution.finished_at = timezone.now()
    execution.sealed_trigger = ""


def _content_without(document: dict | None, secrets: frozenset[str]) -> dict | None:
    """The answer with the secrets left out of the flow's content only: the envelope's own
    fields (processId, status) are Flowsite's, never a quoted secret."""
    if not secrets or document is None or "statusCode" in document:
        return without_secrets(document, secrets)
    return {**document, "data": without_secrets(document.get("data"), secrets)}


SETTLED_FIELDS = (
    "status",
    "num_success",
    "num_error",
    "num_ignore",
    "error",
    "status_code",
    "response",
    "finished_at",
    "sealed_trigger",
)
CANCELLED_AT_THE_END = (
    "The run was cancelled while it finished its last step; what it had done by then "
    "was not undone."
)


def record(execution: Execution, result: RunResult, *, insert: bool = False) -> None:
    """Store a run's outcome, its steps and its errors in one transaction.

    A cancel answered while the run was still running wins: the run ends cancelled even
    when its last step had finished. `insert` stores a run whose row was rolled back with
    the work it did (a failed Execute()), or a deferred run whose row was never written:
    then the finished run and its steps are its only write transaction. Outside a
    transaction, the writes join other threads' in one commit (apps.core.group_commit);
    they are built first, so the transaction holds only SQL."""
    settle(execution, result)
    secrets = result.secrets
    must_insert = insert or execution._state.adding
    steps = [
        StepRun(
            execution=execution,
            position=position,
            path=stats.path,
            kind=stats.kind,
            name=stats.name[:200],
            records_in=stats.records_in,
            records_out=stats.records_out,
            errors=stats.errors,
            duration_ms=round(stats.duration_ms, 3),
            debug_lines=storable(scrub(stats.debug_lines, secrets)),
            sample_in=[_clip(record, secrets) for record in stats.sample_in],
            sample_out=[_clip(record, secrets) for record in stats.sample_out],
        )
        for position, stats in sorted(result.steps.items())
    ]
    errors = [
        ExecutionError(
            execution=execution,
            step_path=error.step_path,
            step_name=error.step_name[:200],
            record=_clip(error.record, secrets) if error.record is not None else None,
            message=storable(scrub(error.message[:5000], secrets)),
            http_status=error.http_status,
            body_excerpt=storable(scrub(error.body_excerpt[:2000], secrets)),
            retriable=error.retriable,
        )
        for error in result.errors
    ]
    document = None
    if result.tape is not None:
        # A recording keeps no secret of the run (the request's, the secret variables as
        # they were then, the connections' credentials as an API quoted them back): it
        # becomes tests, reports and bundles (an outside probe found each of them in clear
        # there). A replay compares what it sends with these values redacted alike.
        document = without_secrets(
            recording.document(
                execution, tape=result.tape, started_from=result.started_from, result=result
            ),
            secrets,
        )

    def write() -> None:  # SQL only: group_commit may run it a second time, alone
        if must_insert:
            _insert(execution)
        else:
            _store_outcome(execution)
        rows.insert(steps)
        if errors:
            ExecutionError.objects.bulk_create(errors)
        if document is not None:
            recording.store(execution, document, overflow=result.tape.overflow)

    group_commit.run(write)
    execution._state.adding = False


def _store_outcome(execution: Execution) -> None:
    """The settled fields of a run whose row exists and is still running. A cancel that
    came first wins. A run that housekeeping ended meanwhile (failed as stale while its
    process was paused, then told its caller to retry) keeps that ending: its late outcome
    is logged, never stored over what a caller may already have acted on."""
    values = {name: getattr(execution, name) for name in SETTLED_FIELDS}
    if rows.update(Execution, execution.pk, values, status=Status.RUNNING, cancel_requested=False):
        return
    error = execution.error if execution.status == Status.CANCELLED else CANCELLED_AT_THE_END
    cancelled = {**values, "status": Status.CANCELLED, "error": error, "status_code": 409}
    if Execution.objects.filter(pk=execution.pk, status=Status.RUNNING).update(**cancelled):
        execution.status, execution.error, execution.status_code = Status.CANCELLED, error, 409
        execution.cancel_requested = True
        return
    late = execution.status
    execution.refresh_from_db(fields=SETTLED_FIELDS)
    execution.ended_late = True
    logger.warning(
        "Execution %s finished (%s) after it had already ended %s: the late outcome was not stored",
        execution.pk,
        late,
        execution.status,
    )


def _response_document(execution: Execution, outcome: Outcome) -> dict | None:
    """The flow's answer (DESIGN §4): its own {statusCode, …}, else the default envelope."""
    if outcome.response is not None:
        return outcome.response
    if execution.trigger not in OUTPUT_TRIGGERS:
        return None
    api = (execution.flow.api if execution.flow else None) or {}
    output_name = api.get("outputName") or "records"
    document = {
        "processId": str(execution.pk),
        "status": outcome.status,
        "data": {output_name: outcome.output},
    }
    if outcome.output_truncated:
        document["truncated"] = True
    return document


def cancel_execution(execution: Execution) -> Execution:
    """Cancel a queued run at once, or ask a running one to stop: it then always ends
    cancelled. AlreadyFinished when it had ended (its status stays as it was)."""
    now = timezone.now()
    cancelled_queued = Execution.objects.filter(pk=execution.pk, status=Status.QUEUED).update(
        status=Status.CANCELLED,
        cancel_requested=True,
        finished_at=now,
        status_code=409,  # what its caller is answered, also on the job (an outside probe)
        error="Cancelled before it started.",
        sealed_trigger="",
    )
    if not cancelled_queued:
        asked = Execution.objects.filter(pk=execution.pk, status=Status.RUNNING).update(
            cancel_requested=True
        )
        if not asked:
            execution.refresh_from_db()
            raise AlreadyFinished(
                f"Job {execution.pk} has finished already ({execution.status}); nothing to cancel."
            )
    execution.refresh_from_db()
    return execution


def recover_stale_executions(*, now=None) -> list:
    """Running executions whose process stopped beating are failed with the reason.
    Returns the ids of the runs it failed (their error handlers are the caller's to start)."""
    now = now or timezone.now()
    threshold = now - timedelta(seconds=settings.FLOWSITE_STALE_EXECUTION_SECONDS)
    stale_ids = list(
        Execution.objects.filter(status=Status.RUNNING, heartbeat_at__lt=threshold).values_list(
            "pk", flat=True
        )
    )
    stale = Execution.objects.filter(pk__in=stale_ids, status=Status.RUNNING)
    # A cancel answered 202 ends cancelled, even when the process never got to stop it.
    count = stale.filter(cancel_requested=True).update(
        status=Status.CANCELLED,
        sealed_trigger="",
        finished_at=now,
        status_code=409,
        error="The run was cancelled; the process running it had stopped (the worker was "
        "killed or crashed) before it could stop the run itself. What it had done by then "
        "was not undone.",
    )
    count += stale.update(
        status=Status.FAILED,
        sealed_trigger="",
        finished_at=now,
        status_code=500,
        error=(
            "The process running this execution stopped (the worker was killed or crashed, "
            "or the database could not be reached to store its outcome): no sign of life for "
            f"over {settings.FLOWSITE_STALE_EXECUTION_SECONDS} s, so its outcome is unknown. "
            "It was not re-run automatically because it may have written to other systems "
            "already; retry it if it is safe."
        ),
    )
    # A queued run with no task behind it (a sync call waiting for a slot whose web process
    # died) would count against its flow's concurrency for ever.
    abandoned_before = now - timedelta(
        milliseconds=settings.FLOWSITE_MAX_SYNC_TIMEOUT_MS,
        seconds=settings.FLOWSITE_STALE_EXECUTION_SECONDS,
    )
    # Any other queued run without a task waits in a process for a slot (a sub-flow, the
    # admin's Test run), looking at it every 50 ms (claim): one that stopped looking has
    # lost its process (they stayed queued for ever; an outside probe).
    waited = Q(heartbeat_at__lt=threshold) | Q(heartbeat_at__isnull=True, created_at__lt=threshold)
    abandoned_ids = list(
        Execution.objects.filter(status=Status.QUEUED, celery_task_id="")
        .filter(
            Q(trigger=Trigger.API, created_at__lt=abandoned_before)
            | (~Q(trigger=Trigger.API) & waited)
        )
        .values_list("pk", flat=True)
    )
    count += Execution.objects.filter(pk__in=abandoned_ids, status=Status.QUEUED).update(
        status=Status.FAILED,
        sealed_trigger="",
        finished_at=now,
        status_code=500,
        error="The call that queued this run ended before it could start (its process stopped).",
    )
    if not count:
        return []
    logger.warning("Recovered %d stale execution(s)", count)
    return list(
        Execution.objects.filter(
            pk__in=[*stale_ids, *abandoned_ids], status=Status.FAILED, finished_at=now
        ).values_list("pk", flat=True)
    )


def purge_executions(*, older_than_days: int) -> int:
    """Delete runs past retention and forget idempotency keys past their lifetime."""
    now = timezone.now()
    key_cutoff = now - timedelta(hours=settings.FLOWSITE_IDEMPOTENCY_TTL_HOURS)
    Execution.objects.filter(created_at__lt=key_cutoff).exclude(idempotency_key="").update(
        idempotency_key=""
    )
    deleted, _ = Execution.objects.filter(
        created_at__lt=now - timedelta(days=older_than_days)
    ).delete()
    return deleted


def failed_records(execution: Execution) -> list[tuple[int, list]]:
    """The records that failed a processor, grouped by it, in processor order."""
    by_step: dict[int, list] = {}
    for step_path, record in execution.errors.values_list("step_path", "record"):
        if not step_path.startswith("pageProcessors[") or record is None:
            continue  # a page generator's failure has no record to retry
        if isinstance(record, dict) and record.get("_truncated"):
            continue  # only an excerpt was kept
        by_step.setdefault(int(step_path[len("pageProcessors[") : -1]), []).append(record)
    return sorted(by_step.items())
