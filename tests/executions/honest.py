"""Helpers of the "honest runs" acceptance tests (issue 10): flows, held runs, answers."""

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import quote

from werkzeug.wrappers import Response

from apps.executions.models import Execution
from apps.flows.models import Application, Connection, Export, Flow, Script
from tests.conftest import wait_for
from tests.executions.conftest import as_json, call

PROBLEM = "application/problem+json"
ERROR_FIELDS = {"step", "stepName", "message", "record", "httpStatus"}
FINISHED = {"succeeded", "completed_with_errors", "failed", "cancelled", "timed_out"}
# Generous: a slow shared machine must never fail a test by waiting too little.
WAIT_SECONDS = 60


def script_flow(
    application: Application, name: str, source: str, *, generators=(), **fields
) -> Flow:
    """A flow whose one processor is a script (after the given page generators)."""
    script = Script.objects.create(name=f"{name} script", content=source)
    return Flow.objects.create(
        application=application,
        name=name,
        page_generators=[{"_exportId": str(export.pk)} for export in generators],
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
        **fields,
    )


def trigger_url(flow: Flow) -> str:
    """PhixFlow's trigger URL of a flow."""
    return f"/api/1/action/{quote(flow.application.name)}/{quote(flow.name)}/trigger"


def resource_url(flow: Flow) -> str:
    """Axway's flow-as-a-resource URL of a flow (its api.path)."""
    return f"/api/resources{flow.api['path']}"


def lookup(export: Export, generate: str, extract: str) -> dict:
    """A per-record lookup processor mapping one value of its answer into the record."""
    return {
        "type": "export",
        "_exportId": str(export.pk),
        "responseMapping": {"lists": [], "fields": [{"extract": extract, "generate": generate}]},
    }


def closed_port() -> int:
    """A local TCP port nothing listens on: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def refusing_connection() -> Connection:
    return Connection.objects.create(
        name="Refusing API",
        base_uri=f"http://127.0.0.1:{closed_port()}",
        allowed_private_hosts=["127.0.0.1"],
    )


def assert_problem(response, status: int) -> dict:
    """A problem+json answer (urllib3 response) with this status: its document."""
    assert response.status == status, response.data[:2000]
    assert response.headers["Content-Type"].startswith(PROBLEM), response.headers
    return as_json(response)


def assert_failed_answer(
    response, status: int, quoting: str = "", *, record_errors: bool = True
) -> dict:
    """The answer of a sync call whose run failed: a problem that tells the truth, quoting
    the failure's own message. `record_errors`: records failed, so `errors` lists some."""
    problem = assert_problem(response, status)
    assert quoting in problem["detail"], problem
    assert problem["processId"], problem
    assert problem["pollUrl"].endswith(f"/poll/{problem['processId']}"), problem
    errors = problem["errors"]
    assert isinstance(errors, list), problem
    assert len(errors) <= 5, problem
    if record_errors:
        assert errors, problem
    for error in errors:
        assert set(error) >= ERROR_FIELDS, error
    return problem


def is_concurrency_problem(body: dict) -> bool:
    return str(body.get("type", "")).endswith("concurrency-limit")


def mentions_the_limit(text: str) -> bool:
    return "maximum" in text.lower() or "concurrency" in text.lower()


def finished_job(client, job_id) -> dict:
    """The job document once the run has finished (the jobs API, read by `client`)."""

    def done():
        body = client.get(f"/api/v1/jobs/{job_id}").json()
        return body if body["status"] in FINISHED else None

    return wait_for(done, timeout=WAIT_SECONDS, interval=0.1, message=f"job {job_id} to finish")


class Hold:
    """A path on the local test server that keeps its caller waiting until released.

    Used to hold a run in one step for as long as a test needs, without timing guesses. It
    lets go by itself after `max_seconds`, so a broken implementation fails slowly rather
    than hangs. pytest-httpserver serves one request at a time: while a step is held there,
    nothing else may call the test server."""

    def __init__(self, httpserver, path: str, answer, max_seconds: float = 20):
        self.entered = threading.Event()
        self.released = threading.Event()
        self.answer = answer
        self.max_seconds = max_seconds
        httpserver.expect_request(path).respond_with_handler(self._handle)

    def _handle(self, request):
        self.entered.set()
        if not self.released.wait(self.max_seconds):
            self.released.set()  # the later calls do not wait again
        return Response(json.dumps(self.answer), content_type="application/json")

    def release(self) -> None:
        self.released.set()


@dataclass
class HeldRun:
    """A sync call whose run is held in a step; `response` once the call has ended."""

    execution: Execution
    thread: threading.Thread
    result: dict = field(default_factory=dict)

    @property
    def response(self):
        return self.result.get("response")


@contextmanager
def held_run(
    live_server, flow: Flow, hold: Hold, key: str, headers: dict | None = None
) -> Iterator[HeldRun]:
    """Call `flow` (sync) in the background; yield once its run waits at `hold`, running.
    On exit the hold is released and the call awaited."""
    result: dict = {}

    def run():
        result["response"] = call(live_server, "GET", trigger_url(flow), key=key, headers=headers)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert hold.entered.wait(WAIT_SECONDS), "the held run never reached its held step"
        # A sync run without maxConcurrency or Idempotency-Key writes its running row at
        # about 1 s if it is still running then (issue "Hot path", writes per run).
        execution = wait_for(
            lambda: Execution.objects.filter(flow=flow, status="running").first(),
            timeout=WAIT_SECONDS,
            interval=0.05,
            message="the held run's running row",
        )
        yield HeldRun(execution=execution, thread=thread, result=result)
    finally:
        hold.release()
        thread.join(WAIT_SECONDS)
    assert not thread.is_alive(), "the held call did not end"
