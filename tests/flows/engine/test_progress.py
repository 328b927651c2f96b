"""Progress while a run goes on (engine.progress): batched per page and by time, never per
record; nothing at all in a run's first half second. A fake clock stands for time."""

from apps.flows.engine.context import MAX_DEBUG_LINES, RunContext, StepStats
from apps.flows.engine.progress import INTERVAL
from apps.flows.engine.runner import run_flow
from apps.flows.outbound import HttpStatusError
from tests.flows.engine.fakes import FakeHttp, FakeScripts, export, flow, record_import


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Reports:
    def __init__(self):
        self.seen: list[dict] = []

    def report(self, progress: dict) -> None:
        self.seen.append(progress)


def context(http, clock, reports) -> RunContext:
    return RunContext(
        process_id="p-1", http=http, scripts=FakeScripts({}), clock=clock, progress=reports
    )


def counts(report: dict, path: str) -> tuple[int, int, int]:
    step = next(step for step in report["steps"] if step["path"] == path)
    return step["in"], step["out"], step["errors"]


def paged_flow():
    return flow(
        generators=[export("Items", "/items", paging="page", page_size=50)],
        processors=[("import", record_import("Post", "/post"), {})],
    )


def test_a_run_of_slow_pages_reports_once_per_page_not_per_record():
    clock, reports = Clock(), Reports()
    sizes = iter([50, 50, 50, 20])

    def page(request):
        clock.now += 0.6  # a slow API: each page takes 0.6 s
        return [{"n": n} for n in range(next(sizes))]

    def post(request):
        clock.now += 0.001  # each record's call is quick
        return {"ok": True}

    http = FakeHttp({"GET /items": page, "POST /post": post})
    outcome = run_flow(paged_flow(), context(http, clock, reports))

    assert outcome.status == "succeeded"
    assert outcome.num_success == 170
    assert len(reports.seen) == 4  # 170 records, 4 pages, 170 calls: one report per page
    assert [counts(r, "pageGenerators[0]")[1] for r in reports.seen] == [50, 100, 150, 170]
    assert [counts(r, "pageProcessors[0]") for r in reports.seen][-1] == (170, 170, 0)
    assert [r["numSuccess"] for r in reports.seen] == [50, 100, 150, 170]
    # Between pages the run waits for the generator's next page: that is where it is.
    assert {r["current"] for r in reports.seen} == {"pageGenerators[0]"}
    assert reports.seen[0]["steps"][1] == {
        "path": "pageProcessors[0]",
        "kind": "import",
        "name": "Post",
        "in": 50,
        "out": 50,
        "errors": 0,
    }


def test_a_run_shorter_than_the_interval_reports_nothing():
    clock, reports = Clock(), Reports()

    def page(request):
        clock.now += INTERVAL / 10
        return [{"n": 1}, {"n": 2}]

    http = FakeHttp({"GET /items": page, "POST /post": lambda r: {"ok": True}})
    outcome = run_flow(paged_flow(), context(http, clock, reports))
    assert outcome.num_success == 2
    assert reports.seen == []


def test_fast_pages_are_reported_at_most_every_interval():
    clock, reports = Clock(), Reports()
    pages = iter([50] * 40 + [0])

    def page(request):
        clock.now += 0.05  # 40 pages in 2 s
        return [{"n": n} for n in range(next(pages))]

    http = FakeHttp({"GET /items": page, "POST /post": lambda r: {"ok": True}})
    run_flow(paged_flow(), context(http, clock, reports))
    assert 3 <= len(reports.seen) <= 4  # 2 s of a run: after 0.5 s, then each 0.5 s


def test_a_long_page_reports_from_inside_with_the_step_it_is_in_and_its_errors():
    clock, reports = Clock(), Reports()
    calls = iter(range(1000))

    def post(request):
        clock.now += 0.05  # 100 records at 50 ms: a page of 5 s
        if next(calls) % 10:
            return {"ok": True}
        return HttpStatusError("422 from /post", retriable=False, status=422)

    http = FakeHttp({"GET /items": lambda r: [{"n": n} for n in range(100)], "POST /post": post})
    spec = flow(
        generators=[export("Items", "/items")],
        processors=[("import", record_import("Post", "/post"), {})],
    )
    outcome = run_flow(spec, context(http, clock, reports))

    assert outcome.num_error == 10
    assert 8 <= len(reports.seen) <= 10  # every 0.5 s of a 5 s page, none per record
    assert {r["current"] for r in reports.seen} == {"pageProcessors[0]"}
    errors = [counts(r, "pageProcessors[0]")[2] for r in reports.seen]
    assert errors == sorted(errors)
    assert errors[0] < errors[-1]  # counted as they come, not at the step's end
    assert [r["numError"] for r in reports.seen] == errors


def test_a_run_without_a_progress_port_has_no_meter():
    clock = Clock()
    http = FakeHttp({"GET /items": lambda r: [{"n": 1}], "POST /post": lambda r: {"ok": True}})
    ctx = RunContext(process_id="p-1", http=http, scripts=FakeScripts({}), clock=clock)
    assert run_flow(paged_flow(), ctx).num_success == 1
    assert ctx.meter is None
    assert ctx.worker_view(lambda: False).progress is None


def test_debug_lines_past_the_limit_are_counted_in_one_last_line():
    """The count said only how many lines the overflowing call lost; later calls' lines
    were dropped without a word."""
    stats = StepStats(path="pageProcessors[0]", kind="script", name="s")

    stats.log([f"a{n}" for n in range(MAX_DEBUG_LINES - 2)])
    stats.log(["b1", "b2", "b3", "b4"])
    stats.log(["c1", "c2", "c3"])
    stats.log([])

    assert len(stats.debug_lines) == MAX_DEBUG_LINES + 1
    assert stats.debug_lines[-3:] == ["b1", "b2", "… 5 more lines not kept"]
