"""Replay a flow test: the flow's current definition, its ports answered from the recording,
offline; then the outcome compared with the expected one, step by step.

The report (`result`: passed | failed) says why a test failed: the steps added or removed
since the recording, each step's records in and out with the first differing record as a
JSON diff, the outbound requests and data-table writes that no longer match the recording
(or that it lacks), and the status, answer and errors when they differ. A replay never
raises: whatever goes wrong is a failed report saying so.
"""

import dataclasses
import json
import logging
import time
from typing import Any

from apps.core.redaction import REDACTED, scrub, secret_values, without_secrets
from apps.executions.recording import answer_of, drop_header
from apps.flows import crypto, spec_cache
from apps.flows.engine.capture import RELAXABLE, Replay, same_json, without
from apps.flows.engine.context import RunContext
from apps.flows.engine.runner import run_flow
from apps.flows.engine.spec import ExportSpec, FlowSpec, StepSpec
from apps.flows.outbound.auth import connection_secrets
from apps.flows.outbound.errors import quoted_secret_forms
from apps.flows.pipeline import PipelineError
from apps.flows.sandbox import get_pool
from apps.flowtests.offline import offline

logger = logging.getLogger(__name__)

MAX_DIFFS = 20
REPLAY_MAX_MS = 60_000


def json_diff(expected: Any, actual: Any, pointer: str = "") -> list[dict]:
    """The differences between two JSON values: [{"path" (JSON pointer), "expected",
    "actual"}], "(missing)" for a side without the key or item; at most MAX_DIFFS."""
    out: list[dict] = []

    def walk(left: Any, right: Any, where: str) -> None:
        if len(out) >= MAX_DIFFS:
            return
        if isinstance(left, dict) and isinstance(right, dict):
            for key in [*left, *(k for k in right if k not in left)]:
                here = f"{where}/{str(key).replace('~', '~0').replace('/', '~1')}"
                if key not in right:
                    out.append({"path": here, "expected": left[key], "actual": "(missing)"})
                elif key not in left:
                    out.append({"path": here, "expected": "(missing)", "actual": right[key]})
                else:
                    walk(left[key], right[key], here)
            return
        if isinstance(left, list) and isinstance(right, list):
            for index in range(max(len(left), len(right))):
                here = f"{where}/{index}"
                if index >= len(right):
                    out.append({"path": here, "expected": left[index], "actual": "(missing)"})
                elif index >= len(left):
                    out.append({"path": here, "expected": "(missing)", "actual": right[index]})
                else:
                    walk(left[index], right[index], here)
            return
        if left != right or type(left) is not type(right):
            out.append({"path": where or "/", "expected": left, "actual": right})

    walk(expected, actual, pointer)
    return out


def brief(diff: list[dict], most: int = 3) -> str:
    """A JSON diff in a line: `/Rating: "Hot" → "Cold"`."""
    shown = [
        f"{item['path']}: {json.dumps(item['expected'], default=str)[:80]} → "
        f"{json.dumps(item['actual'], default=str)[:80]}"
        for item in diff[:most]
    ]
    more = f" (+{len(diff) - most} more)" if len(diff) > most else ""
    return "; ".join(shown) + more


def first_difference(expected: list, actual: list) -> dict | None:
    for index in range(max(len(expected), len(actual))):
        left = expected[index] if index < len(expected) else "(missing)"
        right = actual[index] if index < len(actual) else "(missing)"
        if not same_json(left, right):
            return {
                "index": index,
                "expected": left,
                "actual": right,
                "diff": json_diff(left, right),
            }
    return None


def expected_from(recording: dict, secrets: frozenset[str]) -> dict:
    """A new test's expected outcome: what the recorded run did."""
    outcome = recording.get("outcome") or {}
    return scrub(
        {
            "status": outcome.get("status"),
            "statusCode": outcome.get("statusCode"),
            "answer": outcome.get("answer"),
            "steps": {
                path: {
                    "name": step.get("name"),
                    "kind": step.get("kind"),
                    "in": step.get("in"),
                    "out": step.get("out"),
                }
                for path, step in (recording.get("steps") or {}).items()
            },
            "errors": outcome.get("errors") or [],
        },
        secrets,
    )


def secrets_of(recording: dict, flow) -> frozenset[str]:
    """What a test never keeps, reports or exports in clear: the trigger's secrets, the
    flow's secret variables, and the credentials of the connections it calls, in the forms
    a server may quote them back (the reports and the saved tests quoted a secret variable,
    and an API that echoed the connection's token; outside probe)."""
    try:
        spec = spec_cache.flow_spec(flow)
    except PipelineError:  # a flow that cannot run calls no connection
        connections = {}
    else:
        steps = (*spec.generators, *spec.processors)
        connections = {
            connection.key: connection
            for step in steps
            if (connection := getattr(step.resource, "connection", None)) is not None
        }
    credentials = quoted_secret_forms(
        secret for connection in connections.values() for secret in connection_secrets(connection)
    )
    return frozenset(
        secret_values(recording.get("trigger"))
        | secret_values({"secretVariables": flow.secret_variables()})
        | set(credentials)
    )


def _one_at_a_time(spec: FlowSpec) -> FlowSpec:
    """Every lookup on the replay's thread (see offline): connection concurrency 1."""

    def step(s: StepSpec) -> StepSpec:
        resource = s.resource
        if isinstance(resource, ExportSpec) and resource.connection.concurrency > 1:
            connection = dataclasses.replace(resource.connection, concurrency=1)
            return dataclasses.replace(
                s, resource=dataclasses.replace(resource, connection=connection)
            )
        return s

    return dataclasses.replace(
        spec,
        generators=tuple(step(s) for s in spec.generators),
        processors=tuple(step(s) for s in spec.processors),
    )


def _structure(recorded: list[dict], spec: FlowSpec) -> list[dict]:
    """Steps added, removed or changed in kind since the recording."""
    now = {step.path: step for step in (*spec.generators, *spec.processors)}
    then = {step["path"]: step for step in recorded}
    problems = []
    for path, step in then.items():
        current = now.get(path)
        if current is None:
            problems.append(
                {
                    "step": path,
                    "message": f"{path} ({step['kind']} {step['name']!r}) was removed since the "
                    "recording: the recording no longer matches the flow's steps.",
                }
            )
        elif current.kind != step["kind"]:
            problems.append(
                {
                    "step": path,
                    "message": f"{path} is now a {current.kind} step ({current.name!r}); it was a "
                    f"{step['kind']} step ({step['name']!r}) in the recording.",
                }
            )
    for path, step in now.items():
        if path not in then:
            problems.append(
                {
                    "step": path,
                    "message": f"{path} ({step.kind} {step.name!r}) was added since the "
                    "recording: the recording has nothing for it.",
                }
            )
    return problems


def failed(test, message: str) -> dict:
    return {
        "_id": str(test.pk) if test.pk else None,
        "name": test.name,
        "result": "failed",
        "summary": [message],
        "steps": [],
        "mismatches": [],
    }


def replay(test, flow=None) -> dict:
    """Run one test (against `flow`, the flow as it is about to be saved, when given); its
    report. Never raises."""
    try:
        return _replay(test, flow or test.flow)
    except Exception as exc:  # a defect must still end as a failed test, not a crash
        logger.exception("Flow test %s crashed", test.pk)
        return failed(test, f"The replay could not run: {type(exc).__name__}: {exc}")


def _replay(test, flow) -> dict:
    try:
        recording = crypto.decrypt_json(test.recording)
    except ValueError as exc:
        return failed(test, f"Its recorded run: {exc}")
    try:
        spec = _one_at_a_time(spec_cache.flow_spec(flow))
    except PipelineError as exc:
        return failed(test, f"The flow cannot run: {exc}")
    options = recording.get("options") or {}
    if wanted := {str(pk) for pk in options.get("_exportIds") or []}:  # as the run did
        generators = tuple(g for g in spec.generators if str(g.resource.id) in wanted)
        spec = dataclasses.replace(spec, generators=generators)
    hidden = flow.secret_variables()
    secrets = secrets_of(recording, flow)
    ignored = frozenset(str(name) for name in test.ignored_fields or [])
    relaxed = frozenset(part for part in test.relaxed or [] if part in RELAXABLE)
    ctx_box: dict = {}
    tape = Replay(
        recording,
        where=lambda: ctx_box["ctx"].current_step,
        drop_header=drop_header,
        ignored=ignored,
        relaxed=relaxed,
        conceal=lambda value: without_secrets(value, secrets),
        redacted=REDACTED,
    )
    ctx = RunContext(
        process_id=recording.get("processId") or str(test.pk),
        http=tape.http,
        scripts=tape.scripts(get_pool()),
        trigger=recording.get("trigger") or {},
        variables={**spec.variables, **hidden, **(recording.get("variables") or {})},
        deadline=time.monotonic() + min(flow.timeout_ms, REPLAY_MAX_MS) / 1000,
        retry=None,
        records=tape.records,
        subflows=tape.subflows,
        script_owner=f"flow {flow.pk}",
    )
    ctx_box["ctx"] = ctx
    ctx.recorder.keep_records = True
    with offline():
        outcome = run_flow(
            spec,
            ctx,
            initial_record=recording.get("initialRecord"),
            collect_output=True,
            resume=options.get("resume"),
        )
    mismatches = tape.finish()
    actual = scrub(
        {
            "status": outcome.status,
            "statusCode": outcome.status_code,
            "answer": answer_of(flow.api, ctx.process_id, outcome),
            "steps": {
                path: {"in": stats.kept_in or [], "out": stats.kept_out or []}
                for path, stats in ctx.recorder.steps.items()
            },
            "errors": [
                {"step": error.step_path, "message": error.message, "record": error.record}
                for error in ctx.recorder.errors
            ],
        },
        secrets,
    )
    # What the replay's messages quote (an exception's text, a step's request) is scrubbed
    # as well: a report is shown, stored and written to JUnit files in clear.
    return scrub(compare(test, spec, recording, actual, mismatches, ignored), secrets)


def compare(test, spec: FlowSpec, recording: dict, actual: dict, mismatches, ignored) -> dict:
    expected = test.expected or {}
    summary: list[str] = []
    structure = _structure(recording.get("pipeline") or [], spec)
    summary.extend(problem["message"] for problem in structure)
    report: dict[str, Any] = {"_id": str(test.pk) if test.pk else None, "name": test.name}

    def clean(value: Any) -> Any:
        return without(value, ignored)

    for part in ("status", "statusCode"):
        if part in expected and not same_json(clean(expected[part]), clean(actual[part])):
            report[part] = {"expected": expected[part], "actual": actual[part]}
            summary.append(f"The run's {part} is {actual[part]!r}; expected {expected[part]!r}.")

    steps_report = []
    names = {step.path: (step.kind, step.name) for step in (*spec.generators, *spec.processors)}
    expected_steps = expected.get("steps") or {}
    order = [s.path for s in (*spec.generators, *spec.processors)]
    order += [path for path in expected_steps if path not in order]
    by_step: dict[str, list] = {}
    for mismatch in mismatches:
        by_step.setdefault(mismatch.step, []).append(mismatch.document())
    for path in order:
        kind, name = names.get(path, (expected_steps.get(path, {}).get("kind"), None))
        name = name or expected_steps.get(path, {}).get("name") or path
        want = expected_steps.get(path) or {"in": [], "out": []}
        got = actual["steps"].get(path) or {"in": [], "out": []}
        entry: dict[str, Any] = {
            "step": path,
            "kind": kind,
            "name": name,
            "recordsIn": {"expected": len(want.get("in") or []), "actual": len(got["in"])},
            "recordsOut": {"expected": len(want.get("out") or []), "actual": len(got["out"])},
            "mismatches": by_step.pop(path, []),
        }
        for side in ("in", "out"):
            difference = first_difference(clean(want.get(side) or []), clean(got[side]))
            if difference is not None:
                entry[f"firstDifference{side.title()}"] = difference
        entry["passed"] = not (
            entry["mismatches"]
            or "firstDifferenceIn" in entry
            or "firstDifferenceOut" in entry
            or any(problem["step"] == path for problem in structure)
        )
        for side in ("Out", "In"):
            if difference := entry.get(f"firstDifference{side}"):
                summary.append(
                    f"{path} ({name}): record {difference['index']} {side.lower()} differs "
                    f"from the expected one: {brief(difference['diff'])}"
                )
                break
        summary.extend(m["message"] for m in entry["mismatches"])
        steps_report.append(entry)
    leftover = [m for found in by_step.values() for m in found]
    summary.extend(m["message"] for m in leftover)
    if "answer" in expected and not same_json(clean(expected["answer"]), clean(actual["answer"])):
        report["answer"] = json_diff(clean(expected["answer"]), clean(actual["answer"]))
        summary.append("The flow's answer differs from the expected one.")
    want_errors = [
        clean({k: e.get(k) for k in ("step", "message", "record")})
        for e in expected.get("errors") or []
    ]
    got_errors = clean(actual["errors"])
    if not same_json(want_errors, got_errors):
        report["errors"] = {
            "expected": want_errors,
            "actual": got_errors,
            "firstDifference": first_difference(want_errors, got_errors),
        }
        summary.append(f"The run's errors differ: {len(got_errors)}, expected {len(want_errors)}.")
    report.update(
        result="failed" if summary else "passed",
        summary=summary,
        structure=structure,
        steps=steps_report,
        mismatches=leftover,
    )
    return report
