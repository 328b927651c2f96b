"""Recorded runs (flow tests): which runs record, the ports that record them, and the
recording kept with the run (RunRecording, deleted with it).

A run records when it is a Test run, when its flow has `captureForTests`, or when it is a
re-run made to save a test (`options.captureForTests`). Every other run is untouched: no
wrapped port, no extra row, no extra write.
"""

import json

from django.conf import settings

from apps.core.redaction import is_secret_name
from apps.executions.models import Execution, RunRecording
from apps.flows import crypto
from apps.flows.engine.capture import (
    RecordingHttp,
    RecordingRecords,
    RecordingScripts,
    RecordingSubflows,
    Tape,
)
from apps.flows.engine.context import RunContext

RECORDING_VERSION = 1


def records(execution: Execution) -> bool:
    flow = execution.flow
    return bool(
        execution.trigger == Execution.Trigger.TEST
        or (flow is not None and flow.capture_for_tests)
        or (execution.options or {}).get("captureForTests")
    )


def drop_header(name: str) -> bool:
    """Credentials and secret-looking headers are never recorded (a replay re-injects the
    connection's own)."""
    return is_secret_name(name)


def record_ports(ctx: RunContext) -> Tape:
    """Wrap the context's ports so that what the run exchanges is written on a tape."""
    tape = Tape(max_bytes=settings.FLOWSITE_TEST_CAPTURE_MAX_BYTES)

    def where() -> str:
        return ctx.current_step

    ctx.http = RecordingHttp(ctx.http, tape, where, drop_header)
    ctx.scripts = RecordingScripts(ctx.scripts, tape, where)
    if ctx.records is not None:
        ctx.records = RecordingRecords(ctx.records, tape, where)
    if ctx.subflows is not None:
        ctx.subflows = RecordingSubflows(ctx.subflows, tape, where)
    ctx.recorder.keep_records = True
    return tape


def pipeline(spec) -> list[dict]:
    """The flow's steps as the run saw them: a replay names the steps added or removed."""
    return [
        {"path": step.path, "kind": step.kind, "name": step.name}
        for step in (*spec.generators, *spec.processors)
    ]


def answer_of(api: dict | None, process_id: str, outcome) -> dict:
    """The flow's answer, whatever its trigger: its own {statusCode, …}, else the envelope."""
    if outcome.response is not None:
        return outcome.response
    output_name = (api or {}).get("outputName") or "records"
    return {
        "processId": process_id,
        "status": outcome.status,
        "data": {output_name: outcome.output},
    }


def document(execution: Execution, *, tape: Tape, started_from: dict, result) -> dict:
    """The recording of a finished run."""
    outcome = result.outcome
    return {
        "version": RECORDING_VERSION,
        "processId": str(execution.pk),
        "flowId": execution.flow_id,
        "startedAt": execution.started_at.isoformat() if execution.started_at else None,
        **started_from,
        "variables": execution.variables or {},
        "options": {k: v for k, v in (execution.options or {}).items() if k != "captureForTests"},
        "collectOutput": True,
        **tape.document(),
        "steps": {
            stats.path: {
                "position": position,
                "kind": stats.kind,
                "name": stats.name,
                "in": stats.kept_in or [],
                "out": stats.kept_out or [],
            }
            for position, stats in sorted(result.steps.items())
        },
        "outcome": {
            "status": outcome.status,
            "statusCode": outcome.status_code,
            "answer": answer_of(
                execution.flow.api if execution.flow else None, str(execution.pk), outcome
            ),
            "errors": [
                {"step": error.step_path, "message": error.message, "record": error.record}
                for error in result.errors
            ],
        },
    }


def store(execution: Execution, recording: dict | None, *, overflow: bool) -> None:
    """Keep the recording with its run (in the transaction that records the run)."""
    text = json.dumps(recording, default=str) if recording is not None else ""
    limit = settings.FLOWSITE_TEST_CAPTURE_MAX_BYTES
    complete = recording is not None and not overflow and len(text) <= limit
    RunRecording.objects.create(
        execution=execution,
        data=crypto.encrypt_json(json.loads(text)) if complete else "",
        size_bytes=len(text),
        complete=complete,
    )


def load(execution: Execution) -> dict | None:
    """A run's complete recording, decrypted, or None."""
    stored = RunRecording.objects.filter(execution=execution, complete=True).first()
    if stored is None or not stored.data:
        return None
    try:
        return crypto.decrypt_json(stored.data)
    except crypto.Undecryptable as exc:
        raise crypto.Undecryptable(f"The run's recording: {exc}") from None
