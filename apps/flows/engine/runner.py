"""Run a flow: pages from the generators (or the one starting record) go through the
processors in order. Returns an Outcome; never raises for anything a flow can do."""

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from apps.flows.engine.answer import answer_problem, is_status
from apps.flows.engine.context import (
    DeadlineReached,
    RecordedError,
    RunAborted,
    RunCancelled,
    RunContext,
)
from apps.flows.engine.progress import ProgressMeter
from apps.flows.engine.spec import FlowSpec
from apps.flows.engine.steps import STEP_KINDS, Step, generator_pages
from apps.flows.media_types import answer_content_type, media_type_error

logger = logging.getLogger(__name__)

MAX_OUTPUT_RECORDS = 10_000
# (index of the first processor to run, the records to run through it and the rest)
Resume = list[tuple[int, list]]


@dataclass
class Outcome:
    status: str  # succeeded | completed_with_errors | failed | cancelled | timed_out
    num_success: int = 0
    num_error: int = 0
    num_ignore: int = 0
    output: list = field(default_factory=list)
    output_truncated: bool = False
    response: dict | None = None  # the flow's own {statusCode, …} answer, when it gives one
    status_code: int | None = None
    error: str = ""


def settled(outcome: Outcome, errors: list[RecordedError]) -> None:
    """The status of a run that went through to its end (DESIGN §8): `succeeded` without
    record errors, `completed_with_errors` when some records failed and at least one
    reached the end of the last processor, `failed` when none did. A failed run answers
    502 when an outbound call failed it, else 500."""
    if not outcome.num_error:
        outcome.status = "succeeded"
        return
    if outcome.num_success:
        outcome.status = "completed_with_errors"
        return
    outcome.status = "failed"
    first = errors[0] if errors else None
    outcome.error = first.message if first else f"All {outcome.num_error} record(s) failed."
    outcome.status_code = 502 if first is not None and first.outbound else 500


def script_response(spec: FlowSpec, output: list) -> dict | None:
    """DESIGN §4: the last processor returning one object with an HTTP statusCode."""
    if not spec.processors or spec.processors[-1].kind != "script" or len(output) != 1:
        return None
    candidate = output[0]
    if not isinstance(candidate, dict):
        return None
    return candidate if is_status(candidate.get("statusCode")) else None


class _Run:
    def __init__(self, spec: FlowSpec, ctx: RunContext, collect_output: bool):
        self.spec = spec
        self.ctx = ctx
        self.collect_output = collect_output
        self.steps: list[Step] = [STEP_KINDS[step.kind](step) for step in spec.processors]
        self.outcome = Outcome(status="running")
        self.meter = None
        if ctx.progress is not None:
            self.meter = ctx.meter = ProgressMeter(ctx.progress, self.progress, ctx.clock)

    def progress(self, current: str) -> dict[str, Any]:
        """What a progress report says: every step's counters so far, the current step."""
        seen = self.ctx.recorder.steps
        steps = []
        for step in (*self.spec.generators, *self.spec.processors):
            stats = seen.get(step.path)
            steps.append(
                {
                    "path": step.path,
                    "kind": step.kind,
                    "name": step.name,
                    "in": stats.records_in if stats else 0,
                    "out": stats.records_out if stats else 0,
                    "errors": stats.errors if stats else 0,
                }
            )
        return {
            "current": current,
            "numSuccess": self.outcome.num_success,
            "numError": self.ctx.recorder.error_count,
            "steps": steps,
        }

    def between_pages(self, reader: str) -> None:
        if self.meter is not None:
            self.meter.between_pages(reader)

    def pages(self, initial_record: Any):
        if not self.spec.generators:
            yield [initial_record if initial_record is not None else {}]
            return
        for generator in self.spec.generators:
            stats = self.ctx.recorder.stats(generator)
            self.ctx.current_step = generator.path
            self.between_pages(generator.path)
            self.ctx.checkpoint()
            started = time.perf_counter()
            for page in generator_pages(generator, self.ctx):
                stats.duration_ms += (time.perf_counter() - started) * 1000
                stats.gave_out(page)
                yield page
                self.between_pages(generator.path)  # its next page is read now
                self.ctx.current_step = generator.path
                started = time.perf_counter()

    def process(self, page: list, start: int = 0) -> None:
        if self.meter is not None:
            self.meter.page_begins()
        self.ctx.checkpoint()  # between pages too
        for step in self.steps[start:]:
            if not page:
                return
            if self.meter is not None:
                self.meter.at(step.spec.path)
            self.ctx.checkpoint()
            self.ctx.current_step = step.spec.path
            stats = self.ctx.recorder.stats(step.spec)
            stats.took_in(page)
            started = time.perf_counter()
            page = step.process(page, self.ctx)
            stats.duration_ms += (time.perf_counter() - started) * 1000
            stats.gave_out(page)
        self.outcome.num_success += len(page)
        if self.collect_output:
            room = MAX_OUTPUT_RECORDS - len(self.outcome.output)
            self.outcome.output.extend(page[:room])
            self.outcome.output_truncated |= len(page) > room

    def run(self, initial_record: Any, resume: Resume | None) -> Outcome:
        outcome = self.outcome
        try:
            if resume is None:
                for page in self.pages(initial_record):
                    self.process(page)
            else:
                for start, records in resume:
                    self.between_pages("")
                    self.process(list(records), start)
            outcome.num_error = self.ctx.recorder.error_count
            settled(outcome, self.ctx.recorder.errors)
        except DeadlineReached as stopped:
            outcome.status = "timed_out"
            outcome.status_code = 504  # what its caller is answered, also on the job
            outcome.error = "The run passed its deadline and was stopped." + (
                f" It was waiting for {stopped}" if str(stopped) else ""
            )
        except RunCancelled:
            outcome.status = "cancelled"
            outcome.status_code = 409
            outcome.error = (
                "The run was cancelled and stopped before it finished (its steps show how "
                "far it got); what it had done by then was not undone."
            )
        except RunAborted as abort:
            outcome.status = "failed"
            outcome.error = abort.message
            outcome.status_code = abort.status
        except Exception as exc:  # a defect in a step must still end as a recorded run
            logger.exception("Flow %s crashed", self.spec.name)
            outcome.status = "failed"
            outcome.error = f"Internal error: {type(exc).__name__}: {exc}"
            outcome.status_code = 500
        outcome.num_error = self.ctx.recorder.error_count
        outcome.num_ignore = self.ctx.recorder.ignored
        if outcome.status in ("succeeded", "completed_with_errors"):
            response = script_response(self.spec, outcome.output)
            refusal = None if response is None else answer_problem(response)
            content_type = None if response is None else answer_content_type(response)
            if refusal is not None:
                outcome.status = "failed"
                outcome.status_code = 500
                outcome.error = refusal
            elif content_type is not None and (problem := media_type_error(content_type)):
                outcome.status = "failed"
                outcome.status_code = 500
                outcome.error = f"The flow's answer has an unusable content type: {problem}"
            elif response is not None:
                outcome.response = response
                outcome.status_code = int(response["statusCode"])
        return outcome


def run_flow(
    spec: FlowSpec,
    ctx: RunContext,
    *,
    initial_record: Any = None,
    collect_output: bool = True,
    resume: Resume | None = None,
) -> Outcome:
    """`resume` runs given records from given processors on (a retry of failed records)
    instead of the page generators."""
    return _Run(spec, ctx, collect_output).run(initial_record, resume)
