"""A run watched live in real Chromium: a flow slowed by a local server (each page of its
export takes a second) runs on a real Celery worker while its page, opened before the
worker starts, polls and updates its status, counters and current step in place, then
shows the finished run. With FLOWSITE_SCREENSHOTS=<folder> the page is saved there mid-way
(README shows docs/live-run.png)."""

import json
import os
import time
from pathlib import Path

import pytest
from werkzeug.wrappers import Response

from apps.executions import services
from apps.executions.models import Execution
from apps.flows.models import Export, Flow, Import
from tests.browser.test_run_page import sign_in

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
PAGES = 5
PAGE_SECONDS = 1.0

READ = """() => {
  const cell = (path, column) => {
    const found = document.querySelector(`#live-run tr[data-path="${path}"] .live-${column}`);
    return found ? found.textContent.trim() : null;
  };
  return {
    status: (document.querySelector(".field-coloured_status .readonly") || {}).textContent,
    read: cell("pageGenerators[0]", "out"),
    drawn: (document.querySelector(
      '#flow-diagram [data-step="pageGenerators[0]"] b.diagram-out') || {}).textContent,
    posted: cell("pageProcessors[0]", "out"),
    current: (document.querySelector("#live-run .live-run-current") || {}).textContent,
    finishedPage: Boolean(document.getElementById("execution-steps")),
  };
}"""


def slow_flow(httpserver, local_api, application) -> Flow:
    def leads(request):
        time.sleep(PAGE_SECONDS)
        number = int(request.args.get("page", "1"))
        size = 10 if number < PAGES else 4 if number == PAGES else 0
        body = [{"company": f"Lead {number}-{n}", "rating": "Hot"} for n in range(size)]
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/leads").respond_with_handler(leads)
    httpserver.expect_request("/crm/leads", method="POST").respond_with_json({"ok": True})
    export = Export.objects.create(
        name="Open leads", connection=local_api, relative_uri="/leads", paging="page", page_size=10
    )
    post = Import.objects.create(name="Post lead", connection=local_api, relative_uri="/crm/leads")
    return Flow.objects.create(
        application=application,
        name="Sync open leads",
        page_generators=[{"_exportId": str(export.pk)}],
        page_processors=[{"type": "import", "_importId": str(post.pk)}],
    )


def test_a_slow_run_is_watched_live_and_its_counters_change_before_it_ends(
    page, live_server, embedded_broker, start_worker, httpserver, local_api, application
):
    from playwright.sync_api import Error as PlaywrightError

    flow = slow_flow(httpserver, local_api, application)
    base = live_server.url
    sign_in(page, base)
    execution = services.create_execution(flow=flow, trigger=Execution.Trigger.RUN)

    page.goto(f"{base}/admin/executions/execution/{execution.pk}/change/")
    assert "Waiting for a worker." in page.inner_text("#live-run")

    client, env = embedded_broker
    worker = start_worker(**env)
    client.send_task("flowsite.run_execution", args=[str(execution.pk)])

    seen: list[dict] = []
    shot = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            state = page.evaluate(READ)
        except PlaywrightError:  # the page reloading itself at the end
            time.sleep(0.1)
            continue
        if state["finishedPage"]:
            break
        if state["read"] is not None and (not seen or state != seen[-1]):
            seen.append(state)
            folder = os.environ.get("FLOWSITE_SCREENSHOTS")
            if folder and not shot and int(state["read"]) >= 20:
                page.set_viewport_size({"width": 1280, "height": 720})
                page.screenshot(path=str(Path(folder) / "live-run.png"))
                shot = True
        time.sleep(0.1)
    else:
        pytest.fail(f"the run did not end in time; worker log:\n{worker.log()}")

    # While the page said "Running", its counters took at least three values: they changed
    # at least twice before the run ended.
    running = [state for state in seen if state["status"].strip() == "Running"]
    distinct = list(dict.fromkeys((state["read"], state["posted"]) for state in running))
    assert len(distinct) >= 3, f"counters changed fewer than twice while running: {seen}"
    reads = [int(read) for read, _ in distinct]
    assert reads == sorted(reads)
    assert reads[0] < 10 * (PAGES - 1) + 4  # seen part-way, not only at the end
    assert seen[-1]["status"].strip() in ("Running", "Succeeded")
    assert any("Open leads (pageGenerators[0])" in state["current"] for state in seen)
    # The run's diagram carries the same numbers as they change.
    assert all(state["drawn"] == state["read"] for state in seen), seen

    # The page loaded itself once at the end: the finished run, its steps and buttons.
    page.wait_for_selector("#execution-steps")
    assert "Succeeded" in page.inner_text(".field-coloured_status")
    steps = page.inner_text("#execution-steps")
    assert "Open leads" in steps
    assert "Post lead" in steps
    execution.refresh_from_db()
    assert (execution.status, execution.num_success) == ("succeeded", 44)


def test_the_runs_list_of_a_long_action_updates_its_runs_in_place(page, live_server, application):
    flow = Flow.objects.create(application=application, name="Nightly export")
    runs = [
        Execution.objects.create(
            flow=flow, flow_name=str(flow), trigger=Execution.Trigger.RUN, status=status
        )
        for status in (Execution.Status.QUEUED, Execution.Status.RUNNING)
    ]
    base = live_server.url
    sign_in(page, base)
    ids = ",".join(str(run.pk) for run in runs)
    page.goto(f"{base}/admin/executions/execution/?id__in={ids}")
    assert "2 executions" in page.inner_text("#changelist-form")

    Execution.objects.filter(pk=runs[0].pk).update(status="running", num_success=7)
    Execution.objects.filter(pk=runs[1].pk).update(status="succeeded", num_success=12)
    queued_row = f"#result_list tr:has(input[value='{runs[0].pk}'])"
    done_row = f"#result_list tr:has(input[value='{runs[1].pk}'])"
    page.wait_for_function(
        "selector => document.querySelector(selector + ' td.field-num_success')"
        ".textContent.trim() === '7'",
        arg=queued_row,
    )
    assert page.inner_text(f"{queued_row} td.field-coloured_status").strip() == "Running"
    assert page.inner_text(f"{done_row} td.field-coloured_status").strip() == "Succeeded"
    assert page.inner_text(f"{done_row} td.field-num_success").strip() == "12"
