"""The front door: every run starts here, whoever asks.

API calls, the management API's run, the admin's Run now and Test run, retries (API and
admin), schedules, sub-flows and Execute() all come through one of the functions below.
They decide who may run, check the input, choose the mode and the timeout, apply the
flow's concurrency policy and the caller's Idempotency-Key, and run the flow here or hand
it to a worker. Each returns an Execution or raises a `Refused` (apps/executions/errors);
none takes an HTTP object.

Where runs execute: a *sync* call runs the flow in the web process that received it, with
the call's deadline. A queue hop to a worker would add a broker round trip to every call
while the web thread waits anyway, and scripts already run in isolated sandbox processes.
*async* and *auto* calls run on Celery workers: their run must outlive the request.
"""

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, models, transaction
from django.utils import timezone

from apps.accounts.models import ApiKey
from apps.accounts.privileges import Privilege
from apps.core.db_errors import database_unavailable
from apps.core.digests import canonical_digest
from apps.core.redaction import redacted_pointers
from apps.executions import queue, selectors, services
from apps.executions.errors import (
    BrokerUnavailable,
    ConcurrencyLimit,
    FlowDisabled,
    FlowIsTemplate,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    InvalidInput,
    InvalidTimeout,
    KeyRestricted,
    NotAuthenticated,
    NotFound,
    NotRetriable,
    PrivilegeMissing,
    Refused,
    RoleRequired,
    SecretFieldsMissing,
    TooManyWaiting,
)
from apps.executions.models import Execution
from apps.flows import pipeline
from apps.flows.api_settings import (
    DEFAULT_TIMEOUT_MS,
    INSTANCE_HEADER,
    FlowApi,
    input_errors,
    typed_query,
)
from apps.flows.engine.context import SubflowResult
from apps.flows.models import Flow

logger = logging.getLogger(__name__)

Status = Execution.Status
Trigger = Execution.Trigger
Mode = Execution.Mode
ACTIVE = (Status.QUEUED, Status.RUNNING)
MAX_IDEMPOTENCY_KEY = 200
TEST_RUN_MAX_MS = 60_000
MAX_SUBFLOW_DEPTH = 8


@dataclass(frozen=True)
class Caller:
    """Who asks for a run: an account (with the API key it used), or nobody (anonymous
    calls, schedules), and the client's address."""

    user: Any = None
    api_key: ApiKey | None = None
    client_ip: str | None = None

    @property
    def authenticated(self) -> bool:
        return bool(self.user and self.user.is_authenticated)

    @property
    def account(self):
        return self.user if self.authenticated else None

    @property
    def scope(self) -> str:
        """Who an Idempotency-Key belongs to."""
        return f"user:{self.user.pk}" if self.authenticated else f"anon:{self.client_ip}"


NOBODY = Caller()


# --- Who may run ------------------------------------------------------------------------


def _check_account(flow: Flow, api: FlowApi, caller: Caller) -> None:
    """An account runs a flow with run_flows, a role the flow's API names (if it names
    any) and a key that is not restricted to other flows."""
    user = caller.user
    if not user.has_perm(Privilege.RUN_FLOWS.perm):
        raise PrivilegeMissing(Privilege.RUN_FLOWS)
    if api.roles and not user.is_superuser and not user.roles.filter(name__in=api.roles).exists():
        raise RoleRequired(
            f"Flow {flow.name!r} may be run only by members of: {', '.join(api.roles)}.",
            roles=list(api.roles),
        )
    key = caller.api_key
    if key is not None and key.restricted and not key.flows.filter(pk=flow.pk).exists():
        raise KeyRestricted("This API key is restricted to other flows.")


def _check_api_call(flow: Flow, api: FlowApi, caller: Caller) -> None:
    if not api.enabled:
        if caller.authenticated:
            raise NotFound(f"Flow {flow.name!r} does not exist or is not an API.")
        raise NotAuthenticated
    if not caller.authenticated and not api.allow_anonymous:
        raise NotAuthenticated
    if flow.is_template:
        raise FlowIsTemplate(
            f"Flow {flow.name!r} is a template: it never answers calls itself. Call one of "
            f"its instances (header {INSTANCE_HEADER}: <instance _id>), or create one: "
            f"POST /api/v1/flows/{flow.pk}/instances.",
            _flowId=str(flow.pk),
        )
    _check_enabled(flow, "call")
    if caller.authenticated:
        _check_account(flow, api, caller)


def may_call(flow: Flow, api: FlowApi, caller: Caller) -> bool:
    """Whether the caller may call the flow's API, by the rules of the front door: what the
    OpenAPI catalog shows its reader. A disabled flow counts (it answers 409 until enabled);
    a template does not (only its instances answer)."""
    if not api.enabled or flow.is_template or not (caller.authenticated or api.allow_anonymous):
        return False
    if caller.authenticated:
        try:
            _check_account(flow, api, caller)
        except Refused:
            return False
    return True


def _check_enabled(flow: Flow, verb: str) -> None:
    if flow.disabled:
        raise FlowDisabled(f"Flow {flow.name!r} is disabled: enable it to {verb} it.")


def _check_input(api: FlowApi, value: Any, pointer: str = "") -> None:
    if api.input_schema is None:
        return
    if errors := input_errors(api.input_schema, value):
        raise InvalidInput(
            f"The input does not match the flow's input schema ({len(errors)} problem(s)).",
            errors=[{**e, "pointer": "#" + pointer + e["pointer"][1:]} for e in errors],
        )


def check_idempotency_key(key: str) -> str:
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidIdempotencyKey(
            f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY} characters."
        )
    return key


def call_timeout(api: FlowApi, mode: str, override: str | None) -> int:
    """The flow's timeout for this mode, or ?timeout=<ms>, capped by the server maximum."""
    if override is None or override == "":
        timeout = api.timeout_ms if api.mode == mode else DEFAULT_TIMEOUT_MS[mode]
    else:
        try:
            timeout = int(override)
        except ValueError:
            timeout = 0
        if timeout < 1:
            raise InvalidTimeout("timeout must be a positive number of milliseconds.")
    return min(timeout, settings.FLOWSITE_MAX_SYNC_TIMEOUT_MS)


# --- Starting ---------------------------------------------------------------------------


@dataclass
class Start:
    """Everything a new run is created from."""

    flow: Flow
    trigger: str
    caller: Caller
    mode: str = Mode.ASYNC
    request: dict | None = None  # trigger.args.request, as the steps see it
    input: Any = None  # trigger.args.input, as the steps see it
    variables: dict | None = None
    options: dict | None = None
    idempotency_key: str = ""
    timeout_ms: int | None = None
    caller_label: str = ""
    parent: Execution | None = None
    retry_of: Execution | None = None
    claim_now: bool = False  # run here at once when no concurrency limit applies
    # A sync API call that nothing else needs to see while it runs (see call_flow): its
    # row is written with its outcome, in one transaction, unless it runs past ~1 s.
    deferred: bool = False

    @property
    def fingerprint(self) -> str:
        """The request as far as it matters: not the host it came through or ?timeout."""
        request = self.request
        if self.retry_of is not None:  # a retry is asked for by the job it retries
            parts = [self.trigger, str(self.retry_of.pk)]
        elif request is None:
            parts = [self.trigger, self.input, self.variables, self.options]
        else:
            query = {key: value for key, value in request["query"].items() if key != "timeout"}
            parts = [request["method"], request["path"], query, request["body"]]
        return canonical_digest(parts)


def _start(start: Start) -> tuple[Execution, bool]:
    """The run answering this start: a new one, or the one its Idempotency-Key started."""
    key = start.idempotency_key
    if key and (existing := _same_key(start)):
        return existing, False
    flow = start.flow
    for_worker = not start.claim_now
    if not key and not flow.max_concurrency:
        # Nothing to check first: a deferred sync run writes nothing yet, any other is one
        # INSERT, committed with other threads' (services.create_execution).
        deferred = start.deferred and start.claim_now
        return _new_execution(start, for_worker=for_worker, deferred=deferred), True
    try:
        with transaction.atomic():
            if key and (existing := _same_key(start)):
                return existing, False  # a twin got in first; the write lock serialised us
            _check_concurrency(flow)
            execution = _new_execution(start, for_worker=for_worker, deferred=False)
    except IntegrityError:
        # Another request with the same key won the race: answer with its run.
        existing = _same_key(start)
        if existing is None:
            raise
        return existing, False
    return execution, True


def _new_execution(start: Start, *, for_worker: bool, deferred: bool) -> Execution:
    flow, key = start.flow, start.idempotency_key
    return services.create_execution(
        flow=flow,
        trigger=start.trigger,
        mode=start.mode,
        caller=start.caller.account,
        caller_label=start.caller_label,
        caller_ip=start.caller.client_ip,
        request=start.request,
        input=start.input,
        variables=start.variables,
        options=start.options,
        parent=start.parent,
        retry_of=start.retry_of,
        idempotency_key=key,
        caller_scope=start.caller.scope if key else "",
        # Hashing the body is only worth it when a repeat may have to be recognised.
        request_fingerprint=start.fingerprint if key else "",
        timeout_ms=start.timeout_ms,
        status=Status.RUNNING if start.claim_now and not flow.max_concurrency else Status.QUEUED,
        for_worker=for_worker,
        steps_see={"request": start.request, "input": start.input},
        deferred=deferred,
    )


def _same_key(start: Start) -> Execution | None:
    ttl = timedelta(hours=settings.FLOWSITE_IDEMPOTENCY_TTL_HOURS)
    existing = (
        Execution.objects.select_related("flow__application")
        .filter(
            flow=start.flow,
            caller_scope=start.caller.scope,
            idempotency_key=start.idempotency_key,
        )
        .first()
    )
    if existing is None:
        return None
    if existing.created_at < timezone.now() - ttl:
        Execution.objects.filter(pk=existing.pk).update(idempotency_key="")  # expired
        return None
    if existing.request_fingerprint != start.fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request; use a new key "
            "for a new request.",
            processId=str(existing.pk),
        )
    return existing


def _check_concurrency(flow: Flow) -> None:
    """The reject policy: refuse a run while the flow runs at its maximum (all machines)."""
    if not flow.max_concurrency or flow.concurrency_policy != Flow.ConcurrencyPolicy.REJECT:
        return
    Flow.objects.select_for_update().filter(pk=flow.pk).first()  # serialise across processes
    active = Execution.objects.filter(flow=flow, status__in=ACTIVE).count()
    if active >= flow.max_concurrency:
        raise ConcurrencyLimit(
            f"Flow {flow.name!r} is already running {active} time(s), its maximum "
            f"(maxConcurrency {flow.max_concurrency}, policy reject); retry later.",
            active=active,
        )


def _hand_to_worker(execution: Execution) -> None:
    """Queue the run once its row is committed. Outside a transaction a broker that is
    down refuses the run (it is undone: nothing was started); inside one, the run is
    queued at commit and fails, recorded with the reason, if the broker is down then."""
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: _send_or_fail(execution.pk))
        return
    try:
        queue.send_run(str(execution.pk))
    except Exception as exc:  # kombu raises transport-specific errors
        Execution.objects.filter(pk=execution.pk, status=Status.QUEUED).delete()
        raise BrokerUnavailable(
            f"No worker can take the run now (the task broker is unavailable: {exc}). "
            "Nothing was started; retry later."
        ) from None


def _send_or_fail(execution_id) -> None:
    try:
        queue.send_run(str(execution_id))
    except Exception as exc:  # kombu raises transport-specific errors
        logger.exception("Execution %s could not be queued", execution_id)
        Execution.objects.filter(pk=execution_id, status=Status.QUEUED).update(
            status=Status.FAILED,
            finished_at=timezone.now(),
            status_code=503,
            sealed_trigger="",
            error=f"The run could not be handed to a worker (the task broker is unavailable: "
            f"{exc}); it never started. Retry it when the broker is back.",
        )


# --- Running ----------------------------------------------------------------------------


class SubflowRunner:
    """The engine's sub-flow port: runs a child flow here, linked to its parent run,
    through the front door, for the parent's caller.

    Who may run the child: a parent run by an account (an API call, Run, a retry,
    Execute()) needs what Run needs for the child (`run_flows` and one of its `api.roles`),
    so a wrapper flow does not open a role-restricted flow to accounts outside its roles.
    A parent started by an anonymous API call reaches only children that name no roles. An
    admin Test run, a schedule, an error handler or an Execute() operation's flow runs with
    the authority of the builder who set it up, as it does for its own flow. The child's
    concurrency policy holds for all of them.
    """

    # A refused child fails its record with this status (in `statusCode` of the result).
    WHO_MAY_RUN = (PrivilegeMissing, RoleRequired)
    # Chains started by what a builder set up: not checked against a caller. Execute()
    # runs the flow the builder gave the operation, whose roles the surface has checked.
    BUILDERS = frozenset({Trigger.TEST, Trigger.SCHEDULE, Trigger.ERROR_HANDLER, Trigger.EXECUTE})

    def __init__(self, parent: Execution):
        self.parent = parent
        self._depth: int | None = None
        self._origin = parent.trigger

    def depth(self) -> int:
        """How deep this run is nested (computed once per run, not per record); finds
        the trigger that started the chain of sub-flows on the way."""
        if self._depth is None:
            depth, parent_id = 0, self.parent.parent_id
            while parent_id is not None and depth <= MAX_SUBFLOW_DEPTH:
                depth += 1
                above = Execution.objects.filter(pk=parent_id).values_list("parent_id", "trigger")
                parent_id, trigger = above.first() or (None, "")
                if self._origin == Trigger.SUBFLOW:
                    self._origin = trigger
            self._depth = depth
        return self._depth

    def _check_caller(self, flow: Flow, caller: Caller) -> None:
        if self._origin in self.BUILDERS:
            return
        api = flow.api_settings
        if caller.authenticated:
            _check_account(flow, api, caller)
        elif api.roles:
            raise RoleRequired(
                f"Flow {flow.name!r} may be run only by members of: {', '.join(api.roles)}; "
                "this run's caller is anonymous.",
                roles=list(api.roles),
            )

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
        caller = Caller(user=parent.caller, client_ip=parent.caller_ip)
        timeout_ms = timeout_ms or flow.timeout_ms
        try:
            self._check_caller(flow, caller)
            child, _ = _start(
                Start(
                    flow=flow,
                    trigger=Trigger.SUBFLOW,
                    caller=caller,
                    caller_label=parent.caller_label,
                    mode=Mode.SYNC,
                    input=record,
                    parent=parent,
                    timeout_ms=timeout_ms,
                    claim_now=True,
                )
            )
            child = _run_here(child, timeout_ms)
        except Refused as refused:
            status = 403 if isinstance(refused, self.WHO_MAY_RUN) else 409
            return SubflowResult("", Status.FAILED, status_code=status, error=refused.message)
        return SubflowResult(
            str(child.pk),
            child.status,
            output=services.output_of(child),
            status_code=child.status_code,
            error=child.error,
        )


def _execute(execution: Execution, deadline_ms: int | None = None) -> Execution:
    """Run here; a run without a deadline is a worker's, whose caller does not wait."""
    execution = services.execute(
        execution,
        deadline_ms=deadline_ms,
        subflows=SubflowRunner(execution),
        caller_waits=deadline_ms is not None,
    )
    if not execution.ended_late:  # else housekeeping ended it, and started its handler
        _handle_errors(execution)
    return execution


HANDLED = frozenset({Status.FAILED, Status.COMPLETED_WITH_ERRORS})
NOT_HANDLED_TRIGGERS = frozenset({Trigger.ERROR_HANDLER, Trigger.TEST})


def _handle_errors(execution: Execution) -> None:
    """Run the flow's (or its application's) error handler with the job document, as
    n8n's Error Trigger does, when a run failed or completed with errors. Never for an
    error handler's own runs, nor for the admin's test runs."""
    flow = execution.flow
    if flow is None or execution.status not in HANDLED or execution.trigger in NOT_HANDLED_TRIGGERS:
        return
    handler_id = flow.error_flow_id or flow.application.error_flow_id
    if handler_id is None or handler_id == flow.pk:
        return
    handler = Flow.objects.select_related("application").filter(pk=handler_id).first()
    if handler is None:
        logger.warning("Error handler %s of flow %s is missing", handler_id, flow.pk)
        return
    if handler.disabled:
        _skipped(
            handler,
            "the error handler is disabled.",
            trigger=Trigger.ERROR_HANDLER,
            parent=execution,
        )
        return
    try:
        run, _ = _start(
            Start(
                flow=handler,
                trigger=Trigger.ERROR_HANDLER,
                caller=NOBODY,
                caller_label="error handler",
                input=job_document(execution),
                parent=execution,
            )
        )
        _hand_to_worker(run)
    except Refused as refused:  # the handler's own limit, a broker that is down
        logger.warning(
            "Error handler %s was not run for execution %s: %s",
            handler_id,
            execution.pk,
            refused.message,
        )
        # Recorded where the builder looks, as a schedule's skipped tick is: the handler
        # is how failures reach people (it was only a log line; an outside probe).
        _skipped(handler, refused.message, trigger=Trigger.ERROR_HANDLER, parent=execution)


def job_document(execution: Execution) -> dict:
    """What an error handler gets as its input (trigger.args.input)."""
    return {
        "_id": str(execution.pk),
        "_flowId": str(execution.flow_id),
        "flowName": execution.flow_name,
        "status": execution.status,
        "trigger": execution.trigger,
        "statusCode": execution.status_code,
        "error": execution.error,
        "numSuccess": execution.num_success,
        "numError": execution.num_error,
        "numIgnore": execution.num_ignore,
        "errors": selectors.first_errors(execution),
    }


_waiting = threading.BoundedSemaphore(settings.FLOWSITE_MAX_WAITING_SYNC_CALLS)


def _run_here(execution: Execution, timeout_ms: int) -> Execution:
    """Run here within timeout_ms, waiting for a free slot (queue policy) in that time.

    Waiting holds a web thread, so only FLOWSITE_MAX_WAITING_SYNC_CALLS calls of this
    process wait at once; another one is undone (nothing ran) and refused."""
    if execution.status == Status.RUNNING:  # created claimed: no limit to wait for
        return _execute(execution, timeout_ms)
    if services.claim(execution) == "claimed":
        return _execute(execution, timeout_ms)
    if not _waiting.acquire(blocking=False):
        Execution.objects.filter(pk=execution.pk, status=Status.QUEUED).delete()
        raise TooManyWaiting(
            f"Flow {execution.flow_name!r} is at its maximum concurrency and "
            f"{settings.FLOWSITE_MAX_WAITING_SYNC_CALLS} calls are waiting for it already; "
            "nothing was started, retry later."
        )
    try:
        return _wait_and_run(execution, timeout_ms)
    finally:
        _waiting.release()


def _wait_and_run(execution: Execution, timeout_ms: int) -> Execution:
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            return services.give_up_waiting(execution)
        claim = services.claim(execution)
        if claim == "claimed":
            return _execute(execution, remaining_ms)
        if claim == "gone":  # cancelled while it waited
            execution.refresh_from_db()
            return execution
        time.sleep(0.05)


def _run_by_id(execution_id) -> Execution:
    execution = selectors.run_with_flow(execution_id)
    if execution is None:  # deleted meanwhile (the broker failed and the API call undid it)
        raise Execution.DoesNotExist(f"Execution {execution_id} does not exist")
    return execution


def run_queued(execution_id) -> Execution:
    """A worker's task: claim a queued run and run it here.

    Only one process ever runs an execution: it is claimed by moving it from queued to
    running. A redelivered task (after its worker died) finds it claimed and leaves it to
    stale recovery, because a half-done run may have written to other systems. When the
    flow is at its maximum concurrency the execution stays queued (the task retries)."""
    execution = _run_by_id(execution_id)
    claim = services.claim(execution)
    if claim != "claimed":
        execution = _run_by_id(execution_id)  # as it is now
        if claim == "gone":
            logger.info(
                "Execution %s is %s already; not running it", execution_id, execution.status
            )
        return execution
    return _execute(execution)


def wait_for(execution: Execution, timeout_ms: int) -> Execution:
    """Wait for a run on a worker to finish, at most timeout_ms (looking at its status only).

    A database that stops answering meanwhile ends the wait with the run as it was last
    seen: the caller is answered 202 with the run's id to poll, as when the time is up (it
    was a 503 without the id of a run that goes on)."""
    deadline = time.monotonic() + timeout_ms / 1000
    pause = 0.005
    status = execution.status
    try:
        while status not in Execution.TERMINAL and time.monotonic() < deadline:
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 0.1)
            status = selectors.status_of(execution.pk)
            if status is None:  # undone: its broker failed under a twin request
                raise BrokerUnavailable("The run could not be handed to a worker; retry later.")
        execution.refresh_from_db()
    except DatabaseError as exc:
        if not database_unavailable(exc):
            raise
        logger.warning("Stopped waiting for run %s: the database is unavailable", execution.pk)
        if status not in Execution.TERMINAL:  # a finished run is answered once it can be read
            execution.status = status
    return execution


# --- The entry points -------------------------------------------------------------------


@dataclass(frozen=True)
class Launched:
    """A flow call's run, and its mode: an async call is answered 202 whatever the run's
    state, unless it waited for it (PhixFlow's ?timeout=); a sync or auto call with its
    outcome once the run finished."""

    execution: Execution
    mode: str
    waited: bool = False

    @property
    def answer_now(self) -> bool:
        return (self.mode != Mode.ASYNC or self.waited) and self.execution.is_finished


def call_flow(
    flow: Flow,
    *,
    caller: Caller,
    request: dict,
    respond_async: bool = False,
    timeout: str | None = None,
    idempotency_key: str = "",
) -> Launched:
    """A call of the flow's API (trigger URL or resource path): its run, finished for sync
    and auto calls that finished in time, else queued or running.

    An async call returns at once, unless the caller gave `?timeout=<ms>` (PhixFlow's URL
    parameter) without asking for async itself (`respond_async`): then it waits up to that
    long for the run (capped by FLOWSITE_MAX_SYNC_TIMEOUT_MS and the flow's run timeout,
    past which the run cannot go on), polling its status outside any transaction."""
    api = flow.api_settings
    _check_api_call(flow, api, caller)
    mode = Mode.ASYNC if respond_async else api.mode
    if request["body"] not in (None, ""):
        _check_input(api, request["body"])
    elif api.input_schema is not None:
        _check_input(api, typed_query(api.input_schema, request["query"]))
    timeout_ms = call_timeout(api, mode, timeout)
    execution, created = _start(
        Start(
            flow=flow,
            trigger=Trigger.API,
            caller=caller,
            mode=mode,
            request=request,
            idempotency_key=check_idempotency_key(idempotency_key),
            # A sync run ends with its call; async and auto runs keep the flow's timeout.
            timeout_ms=timeout_ms if mode == Mode.SYNC else None,
            claim_now=mode == Mode.SYNC,
            # Issue "Hot path", writes per run: a sync run of a flow without maxConcurrency,
            # called without an Idempotency-Key, is written once, at its end (or as running
            # at ~1 s). Not when it calls sub-flows: their rows name it as their parent.
            deferred=mode == Mode.SYNC
            and not idempotency_key
            and not flow.max_concurrency
            and not pipeline.subflow_ids(flow.page_processors),
        )
    )
    if mode == Mode.SYNC:
        execution = _run_here(execution, timeout_ms) if created else wait_for(execution, timeout_ms)
        return Launched(execution, mode)
    if created:
        _hand_to_worker(execution)
    if mode == Mode.AUTO:
        execution = wait_for(execution, timeout_ms)
    elif timeout not in (None, "") and not respond_async:
        execution = wait_for(execution, min(timeout_ms, flow.timeout_ms))
        return Launched(execution, mode, waited=True)
    return Launched(execution, mode)


def run(
    flow: Flow,
    *,
    caller: Caller,
    input: Any = None,
    variables: dict | None = None,
    options: dict | None = None,
    idempotency_key: str = "",
) -> tuple[Execution, bool]:
    """Run now on a worker (management API `run`, admin Run now). Returns the run and
    whether it is new (False: the Idempotency-Key's earlier run)."""
    if not caller.authenticated:
        raise NotAuthenticated
    api = flow.api_settings
    _check_account(flow, api, caller)
    _check_enabled(flow, "run")
    _check_input(api, input if input is not None else {}, "/input")
    execution, created = _start(
        Start(
            flow=flow,
            trigger=Trigger.RUN,
            caller=caller,
            input=input,
            variables=variables,
            options=options,
            idempotency_key=check_idempotency_key(idempotency_key),
        )
    )
    if created:
        _hand_to_worker(execution)
    return execution, created


def admin_test_run(
    flow: Flow, *, caller: Caller, input: Any = None, query=None, variables=None
) -> Execution:
    """The admin's Test run: here and now, at most a minute, even for a disabled flow, by
    whoever may run it (as Run now)."""
    _check_account(flow, flow.api_settings, caller)
    timeout_ms = min(flow.timeout_ms, TEST_RUN_MAX_MS)
    execution, _ = _start(
        Start(
            flow=flow,
            trigger=Trigger.TEST,
            caller=caller,
            mode=Mode.SYNC,
            input=input,
            request={
                "method": "POST",
                "url": "admin:test-run",
                "path": "",
                "headers": {},
                "query": query or {},
                "body": input,
                "contentType": "application/json",
            },
            variables=variables,
            timeout_ms=timeout_ms,
            claim_now=True,
        )
    )
    return _run_here(execution, timeout_ms)


def cancel(job: Execution, *, caller: Caller) -> Execution:
    """Cancel a run (the API's jobs/<id>/cancel, the admin's Cancel): whoever may run its
    flow may stop its runs, as retry asks."""
    flow = job.flow
    if flow is not None:
        _check_account(flow, flow.api_settings, caller)
    elif not caller.user.has_perm(Privilege.RUN_FLOWS.perm):
        raise PrivilegeMissing(Privilege.RUN_FLOWS)
    return services.cancel_execution(job)


def retry(
    job: Execution,
    *,
    caller: Caller,
    fields: dict | None = None,
    whole: bool = False,
    capture: bool = False,
    idempotency_key: str = "",
) -> tuple[Execution, bool]:
    """Run a finished job again, linked to it, on a worker: only its failed records when
    it completed with errors, else the whole run with the same input, variables and
    options. `whole` (a re-run) runs it all again whatever its outcome, a success
    included; `capture` records it, to save it as a flow test. Values that were redacted
    when the job was stored must be given in `fields`
    (JSON pointers such as `/request/query/token`), or the retry is refused. Returns the
    retry and whether it is new (False: the Idempotency-Key's earlier retry of this job)."""
    key = check_idempotency_key(idempotency_key)
    with transaction.atomic():
        Execution.objects.select_for_update().filter(pk=job.pk).first()  # one retry at once
        job.refresh_from_db()
        if key and job.flow is not None:
            asked = Start(
                flow=job.flow,
                trigger=Trigger.RETRY,
                caller=caller,
                retry_of=job,
                idempotency_key=key,
            )
            if earlier := _same_key(asked):
                return earlier, False
        _check_retriable(job, whole=whole)
        flow = job.flow
        _check_account(flow, flow.api_settings, caller)
        _check_enabled(flow, "retry")
        stored = {"request": job.request, "input": job.input}
        redacted = redacted_pointers(stored)
        if unknown := [str(p) for p in fields or {} if p not in redacted]:
            raise InvalidInput(
                f"`fields` gives only the values that were redacted when job {job.pk} was "
                f"stored ({', '.join(redacted) or 'none were'}); not: {', '.join(unknown)}.",
                errors=[
                    {
                        "pointer": "#/fields/" + p.replace("~", "~0").replace("/", "~1"),
                        "detail": "Not a value that was redacted in the stored job.",
                    }
                    for p in unknown
                ],
            )
        if missing := [p for p in redacted if p not in (fields or {})]:
            raise SecretFieldsMissing(
                f"Job {job.pk} was stored with redacted values, which a retry cannot send "
                f'again: {", ".join(missing)}. Send them as {{"fields": {{pointer: value}}}}.',
                fields=missing,
            )
        steps_see = _with_fields(stored, fields or {})
        options = {key: value for key, value in job.options.items() if key != "resume"}
        if job.status == Status.COMPLETED_WITH_ERRORS and not whole:
            options["resume"] = services.failed_records(job)
        if capture:
            options["captureForTests"] = True
        retry_run, created = _start(
            Start(
                flow=flow,
                trigger=Trigger.RETRY,
                caller=caller,
                request=steps_see["request"],
                input=steps_see["input"],
                variables=job.variables,
                options=options,
                retry_of=job,
                idempotency_key=key,
            )
        )
    if created:
        _hand_to_worker(retry_run)
    return retry_run, created


def _check_retriable(job: Execution, *, whole: bool = False) -> None:
    if not job.is_finished:
        raise NotRetriable(f"Job {job.pk} is still {job.status}.")
    if job.flow is None:
        raise NotRetriable(f"The flow of job {job.pk} was deleted.")
    if job.trigger == Trigger.EXECUTE:
        raise NotRetriable(
            f"Job {job.pk} ran with an Execute() whose record change was rolled back: "
            "send the Execute() again instead."
        )
    if job.status == Status.SUCCEEDED and not whole:
        raise NotRetriable(f"Job {job.pk} succeeded: there is nothing to retry.")
    if (
        job.status == Status.COMPLETED_WITH_ERRORS
        and not whole
        and not services.failed_records(job)
    ):
        raise NotRetriable(f"Job {job.pk} has no failed records that could be retried.")
    if pending := job.retries.filter(status__in=ACTIVE).first():
        raise NotRetriable(f"Job {job.pk} is being retried already by job {pending.pk}.")


def _with_fields(stored: dict, fields: dict) -> dict:
    """The stored request and input with the caller's values at the given pointers (each
    one a redacted value's, so it leads to a value that is there)."""
    document = json.loads(json.dumps(stored))
    for pointer, value in fields.items():
        parts = [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]
        target = document
        for part in parts[:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(parts[-1])] = value
        else:
            target[parts[-1]] = value
    return document


def scheduled(flow_id: int) -> Execution | None:
    """Beat's tick of a flow's schedule, on a worker: run the flow here.

    Overlap policy "skip": while a scheduled run of the flow is queued or running, a tick
    does nothing. A tick refused by the reject policy is recorded as a cancelled run that
    says why. Returns the run, or None when nothing was started."""
    with transaction.atomic():
        # Lock the flow row: two ticks delivered to two workers cannot both start a run
        # (SQLite serialises all writers already).
        flow = Flow.objects.select_for_update().filter(pk=flow_id).first()
        if flow is None:
            logger.warning("Scheduled run of flow %s: the flow does not exist", flow_id)
            return None
        if flow.disabled:
            logger.info("Scheduled run of flow %s skipped: the flow is disabled", flow_id)
            return None
        if not flow.schedule.strip():  # a tick sent before the schedule was removed
            logger.info("Scheduled run of flow %s skipped: it has no schedule now", flow_id)
            return None
        if flow.is_template:  # a tick sent before it became a template
            logger.info("Scheduled run of flow %s skipped: it is a template", flow_id)
            return None
        active = Execution.objects.filter(flow=flow, trigger=Trigger.SCHEDULE, status__in=ACTIVE)
        _fail_abandoned(active)
        if busy := active.order_by("created_at").first():
            logger.info(
                "Scheduled run of flow %s skipped: its scheduled run %s is still %s",
                flow_id,
                busy.pk,
                busy.status,
            )
            return None
    start = Start(
        flow=flow, trigger=Trigger.SCHEDULE, caller=NOBODY, caller_label="schedule", claim_now=True
    )
    try:
        execution, _ = _start(start)
    except ConcurrencyLimit as refused:
        return _skipped(flow, refused.message)
    # Already on a worker: run here, no second queue hop; queue policy: wait for a slot.
    if execution.status == Status.RUNNING:
        return _execute(execution)
    Execution.objects.filter(pk=execution.pk).update(celery_task_id=str(execution.pk))
    _hand_to_worker(execution)
    return execution


def requeue_lost_runs(*, now=None) -> tuple[int, int]:
    """Housekeeping: a queued run handed to a worker that no worker has looked at for
    FLOWSITE_LOST_RUN_SECONDS lost its task message. It is queued again once (a duplicate
    message does nothing: a run starts only by its conditional claim); still untouched as
    long again, it is failed with the reason. Runs that wait for a slot are looked at
    every half second by their task, so they are never touched. Returns (requeued, failed)."""
    now = now or timezone.now()
    silent_since = now - timedelta(seconds=settings.FLOWSITE_LOST_RUN_SECONDS)
    lost = Execution.objects.filter(status=Status.QUEUED).exclude(celery_task_id="")
    lost = lost.filter(
        models.Q(heartbeat_at__lt=silent_since)
        | models.Q(heartbeat_at__isnull=True, created_at__lt=silent_since)
    )
    failed_ids = list(lost.filter(requeued_at__isnull=False).values_list("pk", flat=True))
    failed = Execution.objects.filter(pk__in=failed_ids, status=Status.QUEUED).update(
        status=Status.FAILED,
        finished_at=now,
        status_code=500,
        sealed_trigger="",
        error="No worker picked this run up: its task message was lost (a broker that "
        "dropped it, or a worker that died holding it), and it was queued again once without "
        "effect. Nothing of it ran; retry it.",
    )
    requeued = 0
    for execution_id in lost.filter(requeued_at__isnull=True).values_list("pk", flat=True):
        marked = Execution.objects.filter(
            pk=execution_id, status=Status.QUEUED, requeued_at__isnull=True
        ).update(requeued_at=now, heartbeat_at=now)
        if marked:
            _send_or_fail(execution_id)
            requeued += 1
    if requeued or failed:
        logger.warning("Lost run messages: queued %d again, failed %d", requeued, failed)
    if failed:
        handle_errors_of(
            Execution.objects.filter(pk__in=failed_ids, status=Status.FAILED, finished_at=now)
        )
    return requeued, failed


def handle_errors_of(failed) -> None:
    """Start the error handlers of runs that housekeeping failed (a worker or a web process
    that died, a lost message): the failures an operator most needs to hear of."""
    for execution in failed.select_related("flow__application"):
        try:
            _handle_errors(execution)
        except Exception:  # one handler that cannot start does not keep the others back
            logger.exception("The error handler of run %s could not be started", execution.pk)


def _skipped(
    flow: Flow,
    reason: str,
    *,
    trigger: str = Trigger.SCHEDULE,
    parent: Execution | None = None,
) -> Execution:
    """A run that was refused, recorded cancelled with the reason: a schedule's tick, an
    error handler that could not start."""
    return Execution.objects.create(
        flow=flow,
        flow_name=str(flow),
        trigger=trigger,
        caller_label="schedule" if trigger == Trigger.SCHEDULE else "error handler",
        parent=parent,
        status=Status.CANCELLED,
        finished_at=timezone.now(),
        status_code=409,
        error=f"Skipped: {reason}",
    )


def _fail_abandoned(active) -> None:
    """A scheduled run is created and claimed in one task; one still queued long after,
    with no task of its own, lost its worker in between and would block the schedule."""
    now = timezone.now()
    threshold = now - timedelta(seconds=settings.FLOWSITE_STALE_EXECUTION_SECONDS)
    count = active.filter(status=Status.QUEUED, celery_task_id="", created_at__lt=threshold).update(
        status=Status.FAILED,
        finished_at=now,
        status_code=500,
        error="The worker that was to run this scheduled run stopped before it started.",
    )
    if count:
        logger.warning("Failed %d abandoned scheduled run(s)", count)


@dataclass
class OperationRun:
    """Execute()'s flow run, done inside the caller's transaction and recorded by it:
    `record()` when the transaction goes on, `record_after_rollback()` when the record
    change is undone (the run is kept, with its steps and errors)."""

    execution: Execution
    result: services.RunResult

    @property
    def succeeded(self) -> bool:
        return self.execution.status == Status.SUCCEEDED

    def record(self) -> None:
        services.record(self.execution, self.result)

    def record_after_rollback(self) -> None:
        services.record(self.execution, self.result, insert=True)


def operation_run(
    flow: Flow, *, caller: Caller, document: dict, options: dict, timeout_ms: int
) -> OperationRun:
    """Execute()'s flow, with the record it changed as input, in this process."""
    execution, _ = _start(
        Start(
            flow=flow,
            trigger=Trigger.EXECUTE,
            caller=caller,
            mode=Mode.SYNC,
            input=document,
            options=options,
            timeout_ms=timeout_ms,
            claim_now=True,
        )
    )
    if execution.status != Status.RUNNING:
        # The queue policy cannot wait inside Execute()'s transaction: run it now.
        execution.status = Status.RUNNING
        execution.started_at = timezone.now()
        Execution.objects.filter(pk=execution.pk).update(
            status=Status.RUNNING, started_at=execution.started_at
        )
    result = services.perform(execution, deadline_ms=timeout_ms, subflows=SubflowRunner(execution))
    services.settle(execution, result)
    return OperationRun(execution, result)
