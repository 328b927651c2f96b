"""The engine alone, with in-memory adapters: semantics, not the network."""

import itertools
import threading
import time

from apps.flows.engine.context import RunContext
from apps.flows.engine.runner import run_flow
from apps.flows.engine.spec import ScriptSpec
from apps.flows.outbound import HttpStatusError
from apps.flows.sandbox import SandboxPool, ScriptAbort, ScriptError
from tests.flows.engine.fakes import (
    FakeHttp,
    FakeScripts,
    export,
    flow,
    json_response,
    record_import,
    script,
)


def context(http=None, scripts=None, **options) -> RunContext:
    return RunContext(
        process_id="p-1", http=http or FakeHttp({}), scripts=scripts or FakeScripts({}), **options
    )


def test_the_seed_orchestrated_flow_maps_lookups_into_records_and_imports_them():
    users = [{"id": 1, "email": "a@x"}, {"id": 2, "email": "b@x"}, {"id": 3, "email": "c@x"}]
    posted_stats, posted_audit = [], []

    def stats_import(request):
        posted_stats.append(request.json)
        if request.json["id"] == 2:
            return HttpStatusError(
                "422 from /stats", retriable=False, status=422, body_excerpt='{"error": "bad"}'
            )
        return {"ok": True}

    http = FakeHttp(
        {
            "GET /trialers": lambda r: {"data": users},
            "GET /connections/1": lambda r: {"data": 4},
            "GET /connections/2": lambda r: {"data": 5},
            "GET /connections/3": lambda r: {"data": 6},
            "GET /flows": lambda r: {"data": {"count": 9}},
            "POST /stats": stats_import,
            "POST /audit": lambda r: posted_audit.append(r.json) or {"id": "a1"},
        }
    )
    spec = flow(
        generators=[export("Trialers", "/trialers", resource_path="data")],
        processors=[
            (
                "export",
                export("Connections", "/connections/{{record.id}}", resource_path="data"),
                {"fields": [("data[0]", "numConnections")]},
            ),
            (
                "export",
                export("Flows", "/flows", resource_path="data"),
                {"fields": [("data[0].count", "numFlows")]},
            ),
            ("import", record_import("Stats", "/stats"), {"proceed_on_failure": True}),
            ("import", record_import("Audit", "/audit"), {}),
        ],
    )
    outcome = run_flow(spec, context(http))
    assert outcome.status == "completed_with_errors"
    assert posted_stats[0] == {"id": 1, "email": "a@x", "numConnections": 4, "numFlows": 9}
    assert [r["id"] for r in posted_audit] == [1, 2, 3]  # 2 failed Stats but proceeded
    assert (outcome.num_success, outcome.num_error) == (3, 1)


def test_a_failing_record_leaves_the_page_and_the_others_go_on():
    http = FakeHttp(
        {
            "GET /n": lambda r: [{"n": 1}, {"n": 2}, {"n": 3}],
            "POST /a": lambda r: (
                HttpStatusError("400", retriable=False, status=400, body_excerpt="nope")
                if r.json["n"] == 2
                else {"ok": 1}
            ),
            "POST /b": lambda r: {"ok": 1},
        }
    )
    spec = flow(
        generators=[export("N", "/n")],
        processors=[
            ("import", record_import("A", "/a"), {}),
            ("import", record_import("B", "/b"), {}),
        ],
    )
    ctx = context(http)
    outcome = run_flow(spec, ctx)
    assert [r["n"] for r in outcome.output] == [1, 3]
    [error] = ctx.recorder.errors
    assert (error.step_path, error.http_status, error.body_excerpt, error.record) == (
        "pageProcessors[0]",
        400,
        "nope",
        {"n": 2},
    )
    assert [c.url for c in http.calls].count("/b") == 2


def test_a_flow_without_generators_starts_from_its_input():
    scripts = FakeScripts(
        {"greet": lambda ctx: {"statusCode": 200, "result": "Hello " + ctx["records"][0]["name"]}}
    )
    outcome = run_flow(
        flow(processors=[("script", script("greet"), {})]),
        context(scripts=scripts),
        initial_record={"name": "Leor"},
    )
    assert outcome.response == {"statusCode": 200, "result": "Hello Leor"}
    assert outcome.status_code == 200


def test_script_error_with_status_fails_the_run_with_that_status():
    def abort(ctx):
        raise ScriptAbort("Bad input", status=422)

    outcome = run_flow(
        flow(processors=[("script", script("abort"), {})]),
        context(scripts=FakeScripts({"abort": abort})),
    )
    assert (outcome.status, outcome.status_code, outcome.error) == ("failed", 422, "Bad input")


def test_a_throwing_script_fails_its_page_records_with_the_line():
    def throw(ctx):
        raise ScriptError("TypeError: x is undefined", kind="error", line=3)

    ctx = context(scripts=FakeScripts({"throw": throw}))
    outcome = run_flow(
        flow(processors=[("script", script("throw"), {})]), ctx, initial_record={"a": 1}
    )
    assert (outcome.status, outcome.status_code) == ("failed", 500)  # no record got through
    assert outcome.num_error == 1
    assert ctx.recorder.errors[0].message == "Script throw at line 3: TypeError: x is undefined"
    assert outcome.error == "Script throw at line 3: TypeError: x is undefined"


def test_a_script_that_drops_records_counts_them_as_ignored():
    scripts = FakeScripts({"keep_even": lambda ctx: [r for r in ctx["records"] if r["n"] % 2 == 0]})
    http = FakeHttp({"GET /n": lambda r: [{"n": i} for i in range(5)]})
    outcome = run_flow(
        flow(generators=[export("N", "/n")], processors=[("script", script("keep_even"), {})]),
        context(http, scripts),
    )
    assert (outcome.num_success, outcome.num_ignore, outcome.num_error) == (3, 2, 0)


def test_page_number_paging_stops_at_a_short_page():
    pages = {1: [{"i": 1}, {"i": 2}], 2: [{"i": 3}, {"i": 4}], 3: [{"i": 5}]}
    http = FakeHttp({"GET /items": lambda r: pages[r.query["page"]]})
    outcome = run_flow(
        flow(generators=[export("Items", "/items", paging="page", page_size=2)]), context(http)
    )
    assert [r["i"] for r in outcome.output] == [1, 2, 3, 4, 5]
    assert [c.query for c in http.calls] == [{"pageSize": 2, "page": n} for n in (1, 2, 3)]


def test_next_link_and_cursor_paging_follow_the_response():
    http = FakeHttp(
        {
            "GET /a": lambda r: {"items": [1], "links": {"next": "https://api.test/a2"}},
            "GET https://api.test/a2": lambda r: {"items": [2], "links": {}},
            "GET /c": lambda r: {
                "items": [r.query.get("cursor", "start")],
                "next": None if r.query.get("cursor") else "k2",
            },
        }
    )
    nextlink = export("A", "/a", resource_path="items", paging="nextlink", next_path="links.next")
    cursor = export("C", "/c", resource_path="items", paging="cursor", next_path="next")
    outcome = run_flow(flow(generators=[nextlink, cursor]), context(http))
    assert outcome.output == [1, 2, "start", "k2"]


def test_the_run_stops_at_its_deadline_between_records():
    ticks = itertools.count(0, 1)  # every look at the clock is a second later
    http = FakeHttp(
        {"GET /n": lambda r: [{"n": i} for i in range(10)], "POST /slow": lambda r: {"ok": 1}}
    )
    ctx = context(http, deadline=6.5, clock=lambda: next(ticks))
    spec = flow(
        generators=[export("N", "/n")], processors=[("import", record_import("Slow", "/slow"), {})]
    )
    outcome = run_flow(spec, ctx)
    assert outcome.status == "timed_out"
    assert "deadline" in outcome.error
    assert 0 < len([c for c in http.calls if c.url == "/slow"]) < 10


def test_cancellation_is_seen_at_the_next_checkpoint():
    calls = {"n": 0}

    def cancelled():
        calls["n"] += 1
        return calls["n"] > 2

    http = FakeHttp({"GET /n": lambda r: [{"n": i} for i in range(10)], "POST /x": lambda r: {}})
    outcome = run_flow(
        flow(generators=[export("N", "/n")], processors=[("import", record_import("X", "/x"), {})]),
        context(http, cancelled=cancelled),
    )
    assert outcome.status == "cancelled"
    assert len([c for c in http.calls if c.url == "/x"]) < 10


def test_a_failing_page_generator_fails_the_run_with_the_reason():
    http = FakeHttp(
        {
            "GET /down": lambda r: HttpStatusError(
                "503 from /down after 4 attempts", retriable=True, status=503, body_excerpt="busy"
            )
        }
    )
    ctx = context(http)
    outcome = run_flow(flow(generators=[export("Down", "/down")]), ctx)
    assert outcome.status == "failed"
    assert "Page generator Down failed" in outcome.error
    assert ctx.recorder.errors[0].http_status == 503


def test_batched_imports_send_lists_and_fail_whole_batches():
    sent = []

    def batch(request):
        sent.append(request.json)
        if any(r["n"] == 3 for r in request.json):
            return HttpStatusError("500", retriable=True, status=500, body_excerpt="")
        return {"ok": True}

    http = FakeHttp({"GET /n": lambda r: [{"n": i} for i in range(5)], "POST /batch": batch})
    outcome = run_flow(
        flow(
            generators=[export("N", "/n")],
            processors=[("import", record_import("B", "/batch", batch_size=2), {})],
        ),
        context(http),
    )
    assert [len(b) for b in sent] == [2, 2, 1]
    assert (outcome.num_success, outcome.num_error) == (3, 2)
    assert json_response({}).status == 200


def test_a_call_that_runs_out_of_deadline_times_the_run_out_instead_of_failing_a_record():
    from apps.flows.outbound import DeadlineExceeded

    http = FakeHttp(
        {"POST /x": lambda r: DeadlineExceeded("no time left", retriable=False, status=None)}
    )
    ctx = context(http)
    outcome = run_flow(flow(processors=[("import", record_import("X", "/x"), {})]), ctx)
    assert outcome.status == "timed_out"
    assert ctx.recorder.errors == []


def test_a_call_stopped_by_cancellation_cancels_the_run():
    from apps.flows.outbound import OutboundError

    state = {"cancel": False}

    def cancelling(request):
        state["cancel"] = True
        return OutboundError("Cancelled", retriable=False)

    ctx = context(FakeHttp({"POST /x": cancelling}), cancelled=lambda: state["cancel"])
    outcome = run_flow(flow(processors=[("import", record_import("X", "/x"), {})]), ctx)
    assert outcome.status == "cancelled"


def test_a_next_link_to_another_host_is_not_followed_with_the_connection_s_credentials():
    http = FakeHttp(
        {"GET /a": lambda r: {"items": [1], "links": {"next": "https://evil.test/steal"}}}
    )
    ctx = context(http)
    spec = flow(
        generators=[
            export("A", "/a", resource_path="items", paging="nextlink", next_path="links.next")
        ]
    )
    outcome = run_flow(spec, ctx)
    assert outcome.status == "failed"
    assert "leaves the connection's host" in outcome.error
    assert [c.url for c in http.calls] == ["/a"]


def test_a_mapping_that_cannot_apply_fails_only_its_record():
    http = FakeHttp(
        {"GET /n": lambda r: [{"tags": ["x"]}, {"tags": {}}], "GET /look": lambda r: {"data": [7]}}
    )
    lookup = export("Look", "/look", resource_path="data")
    spec = flow(
        generators=[export("N", "/n")],
        processors=[("export", lookup, {"fields": [("data[0]", "tags.id")]})],
    )
    ctx = context(http)
    outcome = run_flow(spec, ctx)
    assert (outcome.status, outcome.num_success, outcome.num_error) == (
        "completed_with_errors",
        1,
        1,
    )
    assert "cannot set 'tags.id'" in ctx.recorder.errors[0].message
    assert outcome.output == [{"tags": {"id": 7}}]


def test_a_failed_record_is_stored_as_it_was_when_it_failed():
    http = FakeHttp(
        {
            "POST /a": lambda r: HttpStatusError("400", retriable=False, status=400),
            "GET /b": lambda r: {"data": [1]},
        }
    )
    spec = flow(
        processors=[
            ("import", record_import("A", "/a"), {"proceed_on_failure": True}),
            ("export", export("B", "/b", resource_path="data"), {"fields": [("data[0]", "later")]}),
        ]
    )
    ctx = context(http)
    run_flow(spec, ctx, initial_record={"id": 1})
    assert ctx.recorder.errors[0].record == {"id": 1}


def test_a_numeric_status_makes_a_script_s_object_the_answer_and_a_bad_one_fails_the_run():
    """DESIGN §4: a numeric statusCode makes it the flow's answer. One that is no HTTP
    status fails the run saying so: before, it passed for a record of a 200 "succeeded"."""
    for status, expected in (
        (200, "answer"),
        (204.0, "answer"),
        (-1, "refused"),
        (70000, "refused"),
        (200.5, "refused"),
        (True, "a record"),  # not a number
    ):
        scripts = FakeScripts({"s": lambda ctx, status=status: {"statusCode": status}})
        outcome = run_flow(flow(processors=[("script", script("s"), {})]), context(scripts=scripts))
        if expected == "answer":
            assert (outcome.status, outcome.response) == ("succeeded", {"statusCode": status})
        elif expected == "refused":
            assert outcome.status == "failed", status
            assert "not an HTTP status" in outcome.error
        else:
            assert (outcome.status, outcome.response) == ("succeeded", None)


def test_a_call_cut_short_by_the_deadline_times_the_run_out():
    from apps.flows.outbound import OutboundError

    now = {"t": 0}

    def slow(request):
        now["t"] = 10  # the call used up the time left
        return OutboundError("Timed out after 900 ms", retriable=True)

    http = FakeHttp({"GET /slow": slow})
    ctx = context(http, deadline=5, clock=lambda: now["t"])
    outcome = run_flow(flow(generators=[export("Slow", "/slow")]), ctx)
    assert outcome.status == "timed_out"
    # It says what it was waiting for (an outside probe found only "passed its deadline").
    assert "It was waiting for Slow: Timed out after 900 ms" in outcome.error


def test_a_script_stopped_by_the_deadline_times_the_run_out():
    now = {"t": 0}

    def slow(ctx):
        now["t"] = 10  # stopped at the limit the deadline set
        raise ScriptError("Script exceeded its CPU-time limit", kind="timeout")

    ctx = context(scripts=FakeScripts({"slow": slow}), deadline=5, clock=lambda: now["t"])
    outcome = run_flow(flow(processors=[("script", script("slow"), {})]), ctx)
    assert outcome.status == "timed_out"
    assert ctx.recorder.errors == []


class FakeSubflows:
    def __init__(self, results):
        self.results = results
        self.calls = []

    def run(self, flow_id, record, timeout_ms):
        from apps.flows.engine.context import SubflowResult

        self.calls.append((flow_id, record))
        status, output = self.results(record)
        return SubflowResult(
            "child-1",
            status,
            output=output,
            status_code=200 if status == "succeeded" else 500,
            error="boom",
        )


def subflow_step(**extras):
    from apps.flows.engine.spec import SubflowSpec

    return ("flow", SubflowSpec(id=9, name="Enrich"), extras)


def test_a_sub_flow_runs_per_record_and_its_output_is_mapped_in():
    subflows = FakeSubflows(lambda record: ("succeeded", [{"score": record["n"] * 10}]))
    ctx = context(FakeHttp({"GET /n": lambda r: [{"n": 1}, {"n": 2}]}), subflows=subflows)
    spec = flow(
        generators=[export("N", "/n")],
        processors=[subflow_step(fields=[("data[0].score", "score")])],
    )
    outcome = run_flow(spec, ctx)
    assert outcome.output == [{"n": 1, "score": 10}, {"n": 2, "score": 20}]
    assert [call[0] for call in subflows.calls] == [9, 9]


def test_a_failed_sub_flow_fails_its_record():
    subflows = FakeSubflows(
        lambda record: ("failed", []) if record["n"] == 2 else ("succeeded", [])
    )
    ctx = context(FakeHttp({"GET /n": lambda r: [{"n": 1}, {"n": 2}]}), subflows=subflows)
    outcome = run_flow(flow(generators=[export("N", "/n")], processors=[subflow_step()]), ctx)
    assert (outcome.num_success, outcome.num_error) == (1, 1)
    assert "sub-flow run child-1 failed: boom" in ctx.recorder.errors[0].message


# --- The real script sandbox: a fresh realm per run, a fair share per flow ------------------


def real_script(name: str, source: str):
    return ("script", ScriptSpec(id=3, name=name, source=source), {})


def test_a_global_a_script_sets_in_one_run_is_not_seen_by_the_next_run():
    remember = real_script(
        "remember",
        "function main(ctx) { var seen = globalThis.seen || []; "
        "seen.push(ctx.trigger.args.input.who); globalThis.seen = seen; return {seen} }",
    )
    pool = SandboxPool(size=1, cpu_time_limit_ms=1000, memory_limit_mb=64)
    try:
        outputs = []
        for who in ("A", "B", "C"):
            ctx = context(
                scripts=pool, trigger={"args": {"input": {"who": who}}}, script_owner="flow 1"
            )
            outputs.append(run_flow(flow(processors=[remember]), ctx).output)
    finally:
        pool.close()

    assert outputs == [[{"seen": ["A"]}], [{"seen": ["B"]}], [{"seen": ["C"]}]]


def test_a_flow_past_its_share_of_the_sandbox_fails_503_while_another_flows_script_runs():
    """Two sandbox processes, so one flow's share is one: while a run of the looping flow holds
    it, a second run of that flow waits 300 ms for a process and fails with 503 ("retry"),
    and a run of another flow gets the other process and succeeds."""
    pool = SandboxPool(size=2, cpu_time_limit_ms=2000, memory_limit_mb=64, queue_ms=300)
    looping = flow(processors=[real_script("spin", "function main() { while (true) {} }")])
    trivial = flow(processors=[real_script("greet", "function main() { return {hi: 1} }")])
    first = []
    try:
        holder = threading.Thread(
            target=lambda: first.append(run_flow(looping, context(scripts=pool, script_owner="A")))
        )
        holder.start()
        deadline = time.monotonic() + 5
        while pool.running() != {"A": 1} and time.monotonic() < deadline:
            time.sleep(0.005)

        second = context(scripts=pool, script_owner="A")
        refused = run_flow(looping, second)
        other = run_flow(trivial, context(scripts=pool, script_owner="B"))
        still_held = pool.running()
        holder.join(timeout=10)
    finally:
        pool.close()

    assert (refused.status, refused.status_code) == ("failed", 503)
    assert refused.error.startswith("Script spin: Script was not started: no sandbox process")
    assert refused.error.endswith("Retry later.")
    assert [e.message for e in second.recorder.errors] == [refused.error]
    assert (other.status, other.output) == ("succeeded", [{"hi": 1}])
    assert still_held == {"A": 1}  # the looping run was still in its process all along
    assert (first[0].status, first[0].status_code) == ("failed", 500)  # its CPU-time limit
