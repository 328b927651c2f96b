"""Writes for executions: create, run (here or on a worker), cancel, recover, purge."""

import dataclasses
import json
import logging
import math
import threading
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps.executions.models import Execution, ExecutionError, StepRun
from apps.executions.redaction import redact
from apps.flows.engine.context import RunContext, SubflowResult
from apps.flows.engine.runner import Outcome, run_flow
from apps.flows.engine.spec import FlowSpec
from apps.flows.models import Flow
from apps.flows.outbound import RetryPolicy, get_client
from apps.flows.pipeline import PipelineError, build_flow_spec
from apps.flows.sandbox import get_pool
from apps.records.connections import DataTables

logger = logging.getLogger(__name__)

Status = Execution.Status
Trigger = Execution.Trigger
# Runs whose caller reads the records answer with them; the others only count them.
OUTPUT_TRIGGERS = frozenset({Trigger.API, Trigger.TEST, Trigger.EXECUTE, Trigger.SUBFLOW})
HEARTBEAT_SECONDS = 5.0
CANCEL_CHECK_SECONDS = 1.0
MAX_STORED_RECORD_BYTES = 8192


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
) -> Execution:
    """A new run. `status=running` claims it for this process at once (a sync call);
    `for_worker` records now the Celery task id it will be queued under (its own id)."""
    now = timezone.now() if status == Status.RUNNING else None
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
        input=storable(redact(input)),
        request=storable(redact(request)) if request is not None else None,
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
    # On the hot path of every call: the foreign keys come from loaded objects and the
    # idempotency constraint is the database's to decide (only it sees a race), so only the
    # plain fields are checked here.
    execution.clean_fields(exclude={"flow", "caller", "parent", "retry_of"})
    execution.save(force_insert=True)
    return execution


def enqueue_execution(execution: Execution) -> None:
    """Hand the run to a Celery worker once the row is committed."""
    from apps.executions.tasks import run_execution as run_execution_task

    # The process id doubles as the Celery task id: one id to look for in logs and Flower.
    execution_id = str(execution.pk)
    if execution.celery_task_id != execution_id:  # not recorded when it was created
        Execution.objects.filter(pk=execution.pk).update(celery_task_id=execution_id)
        execution.celery_task_id = execution_id
    transaction.on_commit(
        lambda: run_execution_task.apply_async(args=[execution_id], task_id=execution_id)
    )


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


def _cancel_check(execution_id):
    """A cheap `cancelled()` for the engine: asks the database at most once a second."""
    last = {"at": time.monotonic(), "value": False}  # a run just started is not cancelled

    def cancelled() -> bool:
        now = time.monotonic()
        if not last["value"] and now - last["at"] >= CANCEL_CHECK_SECONDS:
            last["at"] = now
            last["value"] = Execution.objects.filter(
                pk=execution_id, cancel_requested=True
            ).exists()
        return last["value"]

    return cancelled


def _trigger_data(execution: Execution) -> dict:
    args: dict = {}
    if execution.request is not None:
        args["request"] = execution.request
    if execution.input is not None:
        args["input"] = execution.input
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


def _initial_record(execution: Execution) -> Any:
    if isinstance(execution.input, dict):
        return execution.input
    body = (execution.request or {}).get("body")
    return body if isinstance(body, dict) else {}


def storable(value: Any) -> Any:
    """A JSON value every database accepts: no NaN/Infinity, no NUL characters."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {storable(str(key)): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    if value is None or isinstance(value, bool | int):
        return value
    return str(value)


def _clip(record: Any) -> Any:
    """Keep stored records small and clean: a huge one is replaced by an excerpt."""
    record = storable(redact(record))
    text = json.dumps(record)
    if len(text) <= MAX_STORED_RECORD_BYTES:
        return record
    return {"_truncated": True, "excerpt": text[:MAX_STORED_RECORD_BYTES]}


def _claim(execution_id) -> str:
    """Move a queued execution to running: "claimed", "busy" (its flow is at its
    maximum concurrency: try again later) or "gone" (not queued any more)."""
    with transaction.atomic():
        execution = (
            Execution.objects.select_related("flow").filter(pk=execution_id, status=Status.QUEUED)
        ).first()
        if execution is None:
            return "gone"
        flow = execution.flow
        if flow is not None and flow.max_concurrency:
            # Lock the flow row: claims of one flow are serialised on every machine
            # (SQLite serialises all writers already).
            Flow.objects.select_for_update().filter(pk=flow.pk).first()
            running = Execution.objects.filter(flow=flow, status=Status.RUNNING).count()
            if running >= flow.max_concurrency:
                return "busy"
        now = timezone.now()
        # Conditional: of two processes racing for it (a redelivered task, a cancel), one wins.
        claimed = Execution.objects.filter(pk=execution_id, status=Status.QUEUED).update(
            status=Status.RUNNING, started_at=now, heartbeat_at=now
        )
        return "claimed" if claimed else "gone"


def run_execution(execution_id, *, deadline_ms: int | None = None) -> Execution:
    """Run a queued execution in this process and record its outcome.

    Only one process ever runs an execution: it is claimed by moving it from queued to
    running. A redelivered task (after its worker died) finds it claimed and leaves it to
    stale recovery, because a half-done run may have written to other systems. When the
    flow is at its maximum concurrency the execution stays queued (the caller retries).
    """
    claim = _claim(execution_id)
    execution = Execution.objects.select_related("flow__application").get(pk=execution_id)
    if claim != "claimed":
        if claim == "gone":
            logger.info(
                "Execution %s is %s already; not running it", execution_id, execution.status
            )
        return execution
    return execute(execution, deadline_ms=deadline_ms)


def execute(execution: Execution, *, deadline_ms: int | None = None) -> Execution:
    """Run an execution this process has claimed (status running); record its outcome."""
    timeout_ms = deadline_ms or execution.timeout_ms or 0
    # A run shorter than half the stale threshold can never look stale: no heartbeat thread.
    heartbeat = None
    if timeout_ms > settings.FLOWSITE_STALE_EXECUTION_SECONDS * 500:
        heartbeat = _Heartbeat(execution.pk)
        heartbeat.start()
    try:
        outcome, steps, errors = _run(execution, deadline_ms)
    except Exception as exc:  # whatever a flow does, the run ends recorded
        logger.exception("Execution %s crashed while starting", execution.pk)
        outcome, steps, errors = _crashed(exc), {}, []
    finally:
        if heartbeat is not None:
            heartbeat.stopped.set()
            heartbeat.join()
    try:
        _record(execution, outcome, steps, errors)
    except DatabaseError as exc:
        logger.exception("Execution %s: its outcome could not be stored", execution.pk)
        _record(execution, _crashed(exc, "Its outcome could not be stored"), {}, [])
    return execution


def run_in_process(execution: Execution, timeout_ms: int) -> Execution:
    """Run here within timeout_ms, waiting for a free slot (queue policy) in that time."""
    if execution.status == Status.RUNNING:  # created claimed: no limit to wait for
        return execute(execution, deadline_ms=timeout_ms)
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            return give_up_waiting(execution)
        execution = run_execution(execution.pk, deadline_ms=remaining_ms)
        if execution.status != Status.QUEUED:  # queued = every slot was taken
            return execution
        time.sleep(0.05)


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


MAX_SUBFLOW_DEPTH = 8


class SubflowRunner:
    """The engine's sub-flow port: runs a child flow here, linked to its parent run."""

    def __init__(self, parent: Execution):
        self.parent = parent
        self._depth: int | None = None

    def depth(self) -> int:
        """How deep this run is nested (computed once per run, not per record)."""
        if self._depth is None:
            depth, parent_id = 0, self.parent.parent_id
            while parent_id is not None and depth <= MAX_SUBFLOW_DEPTH:
                depth += 1
                parent_id = (
                    Execution.objects.filter(pk=parent_id)
                    .values_list("parent_id", flat=True)
                    .first()
                )
            self._depth = depth
        return self._depth

    def run(self, flow_id: int, record: Any, timeout_ms: int | None) -> SubflowResult:
        flow = Flow.objects.select_related("application").filter(pk=flow_id).first()
        if flow is None:
            return SubflowResult("", Status.FAILED, error=f"flow {flow_id} does not exist.")
        if self.depth() >= MAX_SUBFLOW_DEPTH:
            return SubflowResult(
                "",
                Status.FAILED,
                status_code=508,
                error=f"sub-flows are nested more than {MAX_SUBFLOW_DEPTH} deep; stopped.",
            )
        parent = self.parent
        child = create_execution(
            flow=flow,
            trigger=Trigger.SUBFLOW,
            mode=Execution.Mode.SYNC,
            caller=parent.caller,
            caller_label=parent.caller_label,
            caller_ip=parent.caller_ip,
            input=record,
            parent=parent,
            timeout_ms=timeout_ms,
        )
        child = run_in_process(child, timeout_ms or flow.timeout_ms)
        return SubflowResult(
            str(child.pk),
            child.status,
            output=_output_of(child),
            status_code=child.status_code,
            error=child.error,
        )


def _output_of(execution: Execution) -> list:
    response = execution.response or {}
    if "statusCode" in response:
        return [response]
    return next(iter((response.get("data") or {}).values()), [])


def _crashed(exc: Exception, what: str = "The run could not start") -> Outcome:
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return Outcome(status=Status.FAILED, error=f"{what}: {first_line}", status_code=500)


def _run(execution: Execution, deadline_ms: int | None):
    flow = execution.flow
    if flow is None:
        return Outcome(status=Status.FAILED, error="The flow was deleted.", status_code=410), {}, []
    if flow.disabled and execution.trigger != Trigger.TEST:
        message = "The flow was disabled before this run started."
        return Outcome(status=Status.CANCELLED, error=message, status_code=409), {}, []
    try:
        spec = _only_exports(build_flow_spec(flow), execution.options.get("_exportIds"))
    except PipelineError as exc:
        return Outcome(status=Status.FAILED, error=str(exc), status_code=500), {}, []
    timeout_ms = deadline_ms or execution.timeout_ms or flow.timeout_ms
    ctx = RunContext(
        subflows=SubflowRunner(execution),
        records=DataTables(caller_id=execution.caller_id),
        process_id=str(execution.pk),
        http=get_client(),
        scripts=get_pool(),
        trigger=_trigger_data(execution),
        variables={**spec.variables, **(execution.variables or {})},
        deadline=time.monotonic() + timeout_ms / 1000,
        retry=None if spec.skip_retries else RetryPolicy(),
        cancelled=_cancel_check(execution.pk),
    )
    outcome = run_flow(
        spec,
        ctx,
        initial_record=_initial_record(execution),
        collect_output=execution.trigger in OUTPUT_TRIGGERS,
        resume=execution.options.get("resume"),
    )
    positions = {step.path: step.position for step in (*spec.generators, *spec.processors)}
    return (
        outcome,
        {positions[path]: stats for path, stats in ctx.recorder.steps.items()},
        ctx.recorder.errors,
    )


def _record(execution: Execution, outcome: Outcome, steps: dict, errors: list) -> None:
    with transaction.atomic():
        StepRun.objects.bulk_create(
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
                debug_lines=storable(stats.debug_lines),
                sample_in=[_clip(record) for record in stats.sample_in],
                sample_out=[_clip(record) for record in stats.sample_out],
            )
            for position, stats in sorted(steps.items())
        )
        ExecutionError.objects.bulk_create(
            ExecutionError(
                execution=execution,
                step_path=error.step_path,
                step_name=error.step_name[:200],
                record=_clip(error.record) if error.record is not None else None,
                message=storable(error.message[:5000]),
                http_status=error.http_status,
                body_excerpt=storable(error.body_excerpt[:2000]),
                retriable=error.retriable,
            )
            for error in errors
        )
        execution.status = outcome.status
        execution.num_success = outcome.num_success
        execution.num_error = outcome.num_error
        execution.num_ignore = outcome.num_ignore
        execution.error = storable(outcome.error)
        execution.status_code = outcome.status_code
        execution.response = storable(_response_document(execution, outcome))
        execution.finished_at = timezone.now()
        execution.save(
            update_fields=[
                "status",
                "num_success",
                "num_error",
                "num_ignore",
                "error",
                "status_code",
                "response",
                "finished_at",
            ]
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


def cancel_execution(execution: Execution) -> bool:
    """Ask a run to stop at its next checkpoint; a queued one is cancelled at once."""
    if execution.is_finished:
        return False
    cancelled_queued = Execution.objects.filter(pk=execution.pk, status=Status.QUEUED).update(
        status=Status.CANCELLED,
        cancel_requested=True,
        finished_at=timezone.now(),
        error="Cancelled before it started.",
    )
    if not cancelled_queued:
        Execution.objects.filter(pk=execution.pk).update(cancel_requested=True)
    execution.refresh_from_db()
    return True


def recover_stale_executions(*, now=None) -> int:
    """Running executions whose process stopped beating are failed with the reason."""
    now = now or timezone.now()
    threshold = now - timedelta(seconds=settings.FLOWSITE_STALE_EXECUTION_SECONDS)
    stale = Execution.objects.filter(status=Status.RUNNING, heartbeat_at__lt=threshold)
    count = stale.update(
        status=Status.FAILED,
        finished_at=now,
        status_code=500,
        error=(
            "The process running this execution stopped (the worker was killed or crashed): "
            f"no sign of life for over {settings.FLOWSITE_STALE_EXECUTION_SECONDS} s. "
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
    count += Execution.objects.filter(
        status=Status.QUEUED,
        celery_task_id="",
        trigger=Trigger.API,
        created_at__lt=abandoned_before,
    ).update(
        status=Status.FAILED,
        finished_at=now,
        status_code=500,
        error="The call that queued this run ended before it could start (its process stopped).",
    )
    if count:
        logger.warning("Recovered %d stale execution(s)", count)
    return count


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


class NotRetriable(ValueError):
    """The job cannot be retried (still running, nothing failed, flow gone)."""


def _failed_records(execution: Execution) -> list[tuple[int, list]]:
    """The records that failed a processor, grouped by it, in processor order."""
    by_step: dict[int, list] = {}
    for step_path, record in execution.errors.values_list("step_path", "record"):
        if not step_path.startswith("pageProcessors[") or record is None:
            continue  # a page generator's failure has no record to retry
        if isinstance(record, dict) and record.get("_truncated"):
            continue  # only an excerpt was kept
        by_step.setdefault(int(step_path[len("pageProcessors[") : -1]), []).append(record)
    return sorted(by_step.items())


@transaction.atomic
def retry_execution(*, execution: Execution, caller) -> Execution:
    """Run a finished job again, linked to it: only its failed records when it succeeded
    with record errors, else the whole run with the same input, variables and options."""
    Execution.objects.select_for_update().filter(pk=execution.pk).first()  # one retry at once
    if not execution.is_finished:
        raise NotRetriable(f"Job {execution.pk} is still {execution.status}.")
    if execution.flow is None:
        raise NotRetriable(f"The flow of job {execution.pk} was deleted.")
    if execution.trigger == Trigger.EXECUTE:
        raise NotRetriable(
            f"Job {execution.pk} ran with an Execute() whose record change was rolled back: "
            "send the Execute() again instead."
        )
    if pending := execution.retries.filter(status__in=(Status.QUEUED, Status.RUNNING)).first():
        raise NotRetriable(f"Job {execution.pk} is being retried already by job {pending.pk}.")
    options = {key: value for key, value in execution.options.items() if key != "resume"}
    if execution.status == Status.SUCCEEDED:
        failed = _failed_records(execution)
        if not failed:
            raise NotRetriable(
                f"Job {execution.pk} succeeded without failed records that could be retried."
            )
        options["resume"] = failed
    retry = create_execution(
        flow=execution.flow,
        trigger=Trigger.RETRY,
        caller=caller,
        input=execution.input,
        request=execution.request,
        variables=execution.variables,
        options=options,
        retry_of=execution,
        for_worker=True,
    )
    enqueue_execution(retry)
    return retry


def start_async_run(*, flow: Flow, caller, input: Any = None, variables=None) -> Execution:
    """Run now: queue a run on a Celery worker."""
    execution = create_execution(
        flow=flow,
        trigger=Trigger.RUN,
        caller=caller,
        input=input,
        variables=variables,
        for_worker=True,
    )
    enqueue_execution(execution)
    return execution


TEST_RUN_MAX_MS = 60_000


def execute_test_run(
    *, flow: Flow, caller, input: Any = None, query=None, variables=None
) -> Execution:
    """Run in this process now (the admin's Test run), at most a minute, and return it."""
    execution = create_execution(
        flow=flow,
        trigger=Trigger.TEST,
        mode=Execution.Mode.SYNC,
        caller=caller,
        input=input,
        request={
            "method": "POST",
            "url": "admin:test-run",
            "headers": {},
            "query": query or {},
            "body": input,
            "contentType": "application/json",
        },
        variables=variables,
        timeout_ms=min(flow.timeout_ms, TEST_RUN_MAX_MS),
    )
    return run_execution(execution.pk)
