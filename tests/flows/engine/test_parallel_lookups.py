"""Lookups up to the connection's concurrency level at once, against a real local server:
order, overlap, keep-alive, per-record isolation, deadline and cancellation."""

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from apps.flows.engine.context import RunContext
from apps.flows.engine.runner import run_flow
from apps.flows.engine.spec import ExportSpec, FieldMapping, FlowSpec, ResponseMapping, StepSpec
from apps.flows.outbound import ConnectionConfig, OutboundClient
from tests.flows.engine.fakes import FakeScripts


class Api:
    """The local API: a page of records, and a per-record lookup that counts the calls in
    flight; the server counts the connections it accepted."""

    def __init__(self, base_uri: str):
        self.base_uri = base_uri
        self.delay = lambda record_id: 0.0
        self.fail: set[int] = set()
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls: list[int] = []
        self.connections = 0
        self.records = 0

    def connected(self) -> None:
        with self.lock:
            self.connections += 1

    def answer(self, path: str, query: dict) -> tuple[int, dict]:
        if path == "/records":
            return 200, {"data": [{"id": i} for i in range(self.records)]}
        record_id = int(query["id"][0])
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.calls.append(record_id)
        try:
            time.sleep(self.delay(record_id))
            if record_id in self.fail:
                return 422, {"error": "unknown id"}
            return 200, {"data": {"tier": f"tier-{record_id}"}}
        finally:
            with self.lock:
                self.in_flight -= 1


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 with a Content-Length: the connection stays open for the next request.
    # (pytest-httpserver's werkzeug server answers every request with Connection: close,
    # so keep-alive could not be seen there.)
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle's algorithm holds the
    # body until the client's delayed ACK (~40 ms a response).
    disable_nagle_algorithm = True
    api: Api

    def setup(self) -> None:
        super().setup()
        self.server.api.connected()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        status, body = self.server.api.answer(url.path, parse_qs(url.query))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def api():
    """A real threaded HTTP server on 127.0.0.1; its `api` decides the answers."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.api = Api(f"http://127.0.0.1:{server.server_port}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.api
    server.shutdown()
    server.server_close()


@pytest.fixture
def client(settings):
    settings.FLOWSITE_ALLOW_PRIVATE_NETWORKS = True  # the local server is on 127.0.0.1
    client = OutboundClient()
    yield client
    client.close()


def lookup_flow(api: Api, concurrency: int, *, proceed_on_failure: bool = False) -> FlowSpec:
    connection = ConnectionConfig(
        key=f"parallel-{concurrency}-{api.base_uri}",
        base_uri=api.base_uri,
        concurrency=concurrency,
    )
    records = ExportSpec(
        id=1, name="records", connection=connection, relative_uri="/records", resource_path="data"
    )
    tier = ExportSpec(
        id=2,
        name="tier",
        connection=connection,
        relative_uri="/tier?id={{record.id}}",
        resource_path="data",
    )
    return FlowSpec(
        id=1,
        name="lookups",
        generators=(StepSpec("export", "pageGenerators[0]", 0, "records", records),),
        processors=(
            StepSpec(
                "export",
                "pageProcessors[0]",
                1,
                "tier",
                tier,
                proceed_on_failure=proceed_on_failure,
                response_mapping=ResponseMapping(fields=(FieldMapping("data[0].tier", "tier"),)),
            ),
        ),
    )


def context(client: OutboundClient, **options) -> RunContext:
    # No retries: a failed lookup fails its record at once.
    return RunContext(process_id="p-1", http=client, scripts=FakeScripts({}), retry=None, **options)


def run_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("run p-1")]


def test_lookups_at_concurrency_8_keep_the_page_order_under_random_delays(api, client):
    delays = random.Random(7)  # noqa: S311 - test data, not cryptography
    by_record = {i: delays.uniform(0, 0.02) for i in range(60)}
    api.delay = by_record.__getitem__
    api.records = 60
    ctx = context(client)
    outcome = run_flow(lookup_flow(api, 8), ctx)
    assert outcome.status == "succeeded"
    assert outcome.output == [{"id": i, "tier": f"tier-{i}"} for i in range(60)]
    assert sorted(api.calls) == list(range(60))
    assert api.calls != list(range(60))  # the server saw them out of order
    stats = ctx.recorder.steps["pageProcessors[0]"]
    assert (stats.records_in, stats.records_out, stats.errors) == (60, 60, 0)
    assert [record["id"] for record in stats.sample_out] == [0, 1, 2]
    assert run_threads() == []  # no worker outlives its page


def test_the_calls_overlap_up_to_the_concurrency_level_and_never_more(api, client):
    api.delay = lambda record_id: 0.01
    api.records = 40
    outcome = run_flow(lookup_flow(api, 4), context(client))
    assert outcome.status == "succeeded"
    assert 1 < api.max_in_flight <= 4


def test_concurrency_1_calls_one_record_after_another(api, client):
    api.delay = lambda record_id: 0.002
    api.records = 20
    outcome = run_flow(lookup_flow(api, 1), context(client))
    assert outcome.status == "succeeded"
    assert api.max_in_flight == 1
    assert api.calls == list(range(20))
    assert [record["tier"] for record in outcome.output] == [f"tier-{i}" for i in range(20)]
    assert api.connections == 1  # the page and every lookup on one kept-alive connection


def test_parallel_calls_keep_alive_on_at_most_concurrency_connections(api, client):
    # 16 is above the client's default pool of 10 idle connections per host: the pool
    # grows to the connection's concurrency, so the connections of one page are all kept
    # for the next (here: the next run) instead of 6 being dropped and opened again.
    api.delay = lambda record_id: 0.02
    api.records = 160
    for _ in range(2):
        outcome = run_flow(lookup_flow(api, 16), context(client))
        assert outcome.status == "succeeded"
    assert 1 < api.connections <= 16


@pytest.mark.parametrize("proceed_on_failure", [False, True])
def test_a_failing_record_in_the_middle_is_isolated_and_recorded_while_the_others_go_on(
    api, client, proceed_on_failure
):
    api.delay = lambda record_id: 0.005 if record_id != 7 else 0.03
    api.fail = {7}
    api.records = 16
    ctx = context(client)
    spec = lookup_flow(api, 8, proceed_on_failure=proceed_on_failure)
    outcome = run_flow(spec, ctx)

    assert outcome.status == "completed_with_errors"
    assert (outcome.num_success, outcome.num_error) == (16 if proceed_on_failure else 15, 1)
    expected = [{"id": i, "tier": f"tier-{i}"} for i in range(16)]
    expected[7] = {"id": 7}
    if not proceed_on_failure:
        del expected[7]
    assert outcome.output == expected
    [error] = ctx.recorder.errors
    assert (error.step_path, error.record, error.http_status) == (
        "pageProcessors[0]",
        {"id": 7},
        422,
    )
    assert error.outbound
    assert "HTTP 422" in error.message
    assert "unknown id" in error.body_excerpt


def test_a_deadline_reached_during_a_parallel_page_times_the_run_out(api, client):
    api.delay = lambda record_id: 0.02
    api.records = 400
    ctx = context(client, deadline=time.monotonic() + 0.3)
    outcome = run_flow(lookup_flow(api, 4), ctx)

    assert outcome.status == "timed_out"
    assert "deadline" in outcome.error
    assert ctx.recorder.errors == []  # calls cut short by the deadline fail no record
    assert 0 < len(api.calls) < 400
    assert run_threads() == []  # every call ended with the run
    calls = len(api.calls)
    time.sleep(0.1)
    assert len(api.calls) == calls  # and no call started after it


def test_a_run_cancelled_during_a_parallel_page_stops_its_calls(api, client):
    api.delay = lambda record_id: 0.01
    api.records = 400
    checked_on = set()

    def cancelled() -> bool:
        checked_on.add(threading.current_thread().name)
        return len(api.calls) >= 40

    outcome = run_flow(lookup_flow(api, 4), context(client, cancelled=cancelled))
    assert outcome.status == "cancelled"
    assert 40 <= len(api.calls) < 400
    assert run_threads() == []
    # The run's own check (which may ask the database) runs on the run's thread only.
    assert checked_on == {threading.current_thread().name}


def test_a_cancellation_is_seen_while_the_run_waits_for_a_slow_record(api, client):
    # Record 0 is slow; the workers go on with the others meanwhile. The run thread,
    # waiting for record 0, still looks at cancellation, and the workers stop soon after,
    # long before the page is done.
    api.delay = lambda record_id: 1.5 if record_id == 0 else 0.02
    api.records = 400
    outcome = run_flow(lookup_flow(api, 4), context(client, cancelled=lambda: len(api.calls) >= 20))
    assert outcome.status == "cancelled"
    assert 20 <= len(api.calls) < 100
    assert run_threads() == []


def test_a_data_tables_lookup_stays_on_the_runs_thread_whatever_the_concurrency():
    class Tables:
        threads: set = set()

        def read(self, query, *, after, limit):
            self.threads.add(threading.current_thread().name)
            return [{"level": "gold"}], None

    connection = ConnectionConfig(key="tables", base_uri="", concurrency=8)
    tables = ExportSpec(id=2, name="levels", connection=connection, records={"_recordTypeId": 1})
    spec = FlowSpec(
        id=1,
        name="tables",
        generators=(),
        processors=(
            StepSpec(
                "export",
                "pageProcessors[0]",
                0,
                "levels",
                tables,
                response_mapping=ResponseMapping(fields=(FieldMapping("data[0].level", "level"),)),
            ),
        ),
    )
    records = Tables()
    ctx = RunContext(process_id="p-1", http=None, scripts=FakeScripts({}), records=records)
    outcome = run_flow(spec, ctx, resume=[(0, [{"id": i} for i in range(5)])])
    assert outcome.output == [{"id": i, "level": "gold"} for i in range(5)]
    assert records.threads == {threading.current_thread().name}
