"""The builder's journey in real Chromium (issue "Builder's studio"): sign in; a connection,
tested; an export, previewed; a script, tested on sample input; a flow built from rows;
the flow exposed as a sync GET and called from Try it; a run slowed by a local server
watched live; a failed record retried from its page.

No JSON and no id is typed (every typed text goes through `type_in`, which refuses both),
and the journey takes at most 12 page loads: top-level navigations plus popups, counted
by Playwright. A real Celery worker runs the run, against a real local HTTP server."""

import json
import time

import pytest
from playwright.sync_api import Error as PlaywrightError
from werkzeug.wrappers import Response

from apps.accounts.models import User
from apps.executions.models import Execution
from apps.flows.models import Application, Flow
from tests.conftest import live_database_url

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

PAGES = 4  # of the export, each slowed by the local server
PAGE_SECONDS = 0.8
MAX_PAGE_LOADS = 12
SCRIPT = """function main(ctx) {
  return ctx.records.map(function (lead) {
    if (lead.rating === 'Cold') { throw new Error('cold lead: ' + lead.company); }
    return {company: lead.company.toUpperCase(), rating: lead.rating};
  });
}"""

READ_LIVE = """() => {
  const cell = (path, column) => {
    const found = document.querySelector(`#live-run tr[data-path="${path}"] .live-${column}`);
    return found ? found.textContent.trim() : null;
  };
  const status = document.querySelector(".field-coloured_status .readonly");
  return {
    status: status ? status.textContent.trim() : null,
    read: cell("pageGenerators[0]", "out"),
    finished: Boolean(document.getElementById("execution-steps")),
  };
}"""


def looks_like_json_or_an_id(text: str) -> bool:
    if text.strip().isdigit():
        return True
    try:
        return isinstance(json.loads(text), dict | list)
    except ValueError:
        return False


def type_in(page, selector: str, text: str) -> None:
    assert not looks_like_json_or_an_id(text), f"the journey typed JSON or an id: {text!r}"
    page.fill(selector, text)


def save_and_continue(page) -> None:
    page.click("input[name=_continue]")
    message = page.wait_for_selector(".messagelist .success, .errornote")
    assert "successfully" in message.inner_text(), page.inner_text("#content")


def pick(page, editor: str, row: int, search: str) -> None:
    """A step picked by name: the row's picker searches as one types."""
    page.click(f"{editor} tbody tr:nth-child({row}) .select2-selection")
    type_in(page, ".select2-container--open .select2-search__field", search)
    page.keyboard.press("Enter")


def try_here(page) -> str:
    """The try-it panel of the page: sent in place, its result read."""
    page.click("#try-panel input[type=submit]")
    return page.wait_for_selector("#try-panel .try-inline-output #try-it-result").inner_text()


def serve_leads(httpserver) -> None:
    """The CRM: /me for the connection test; /leads in pages of 10, each slow, with cold
    leads on the third page (the script fails them)."""

    def leads(request):
        time.sleep(PAGE_SECONDS)
        number = int(request.args.get("page", "1"))
        size = 10 if number <= PAGES else 0
        rating = "Cold" if number == 3 else "Hot"
        body = {"data": [{"company": f"Lead {number}-{n}", "rating": rating} for n in range(size)]}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/me").respond_with_json({"user": "integration"})
    httpserver.expect_request("/leads").respond_with_handler(leads)


def test_the_builders_journey_types_no_json_or_id_and_takes_at_most_twelve_page_loads(
    page, live_server, httpserver, start_worker
):
    serve_leads(httpserver)
    # Same broker as this process (var/broker, or CELERY_BROKER_URL in CI), same database.
    worker = start_worker(DATABASE_URL=live_database_url())
    Application.objects.create(name="Sales")
    User.objects.create_superuser("builder", password="builder-pass-123")
    base = live_server.url
    loads: list[str] = []
    page.on("framenavigated", lambda frame: frame is page.main_frame and loads.append(frame.url))
    page.context.on("page", lambda popup: loads.append(f"popup: {popup.url}"))

    # 1. Sign in, straight to a new connection.
    page.goto(f"{base}/admin/login/?next=/admin/flows/connection/add/")
    type_in(page, "#id_username", "builder")
    type_in(page, "#id_password", "builder-pass-123")
    page.click("input[type=submit]")

    # 2. A connection, tested.
    type_in(page, "#id_name", "CRM")
    type_in(page, "#id_base_uri", httpserver.url_for("/").rstrip("/"))
    page.click("summary:has-text('Advanced')")
    type_in(page, "#id_allowed_private_hosts", "localhost\n127.0.0.1")
    save_and_continue(page)
    type_in(page, "#try_path", "/me")
    assert "Reached: HTTP 200" in try_here(page)

    # 3. An export, previewed.
    page.goto(f"{base}/admin/flows/export/add/")
    type_in(page, "#id_name", "Open leads")
    page.select_option("#id_application", label="Sales")
    page.select_option("#id_connection", label="CRM")
    type_in(page, "#id_relative_uri", "/leads")
    type_in(page, "#id_resource_path", "data")
    page.select_option("#id_paging", "page")
    save_and_continue(page)
    assert "10 records on the first page" in try_here(page)

    # 4. A script, tested on sample input (as the page offers it).
    page.goto(f"{base}/admin/flows/script/add/")
    type_in(page, "#id_name", "Shout")
    page.select_option("#id_application", label="Sales")
    page.evaluate(f"document.querySelector('#id_content').editor.setValue({json.dumps(SCRIPT)})")
    save_and_continue(page)
    result = try_here(page)
    assert "ACME" in result, result

    # 5. A flow built from rows, 6. exposed as a sync GET.
    page.goto(f"{base}/admin/flows/flow/add/")
    page.select_option("#id_application", label="Sales")
    type_in(page, "#id_name", "Shout leads")
    page.click("#id_generator_rows .row-add")
    pick(page, "#id_generator_rows", 1, "open")
    page.click("#id_processor_rows .row-add")
    pick(page, "#id_processor_rows", 1, "shout")
    page.check("#id_endpoint_enabled")
    type_in(page, "#id_endpoint_path", "/shout-leads")
    save_and_continue(page)
    flow = Flow.objects.get(name="Shout leads")
    assert flow.api_enabled
    assert (flow.api_method, flow.api_path) == ("GET", "/shout-leads")

    # ... and called from Try it, in place.
    page.click("#endpoint-panel button.endpoint-try >> nth=0")
    called = page.wait_for_selector("#endpoint-result .endpoint-response", timeout=30_000)
    assert "LEAD 1-0" in called.inner_text()
    assert Execution.objects.filter(flow=flow, trigger=Execution.Trigger.API).count() == 1

    # 7. A run slowed by the local server, watched live: its counters change twice.
    page.click("button.run-now-button")
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            state = page.evaluate(READ_LIVE)
        except PlaywrightError:  # the page loading itself once the run has ended
            time.sleep(0.1)
            continue
        if state["finished"]:
            break
        if state["read"] is not None and state["status"] == "Running":
            seen = [*seen, state["read"]] if not seen or seen[-1] != state["read"] else seen
        time.sleep(0.1)
    else:
        pytest.fail(f"the run did not end in time; worker log:\n{worker.log()}")
    assert len(seen) >= 3, f"the counters changed fewer than twice while it ran: {seen}"

    # 8. Its failed records retried from its page.
    page.wait_for_selector("#execution-steps")
    run = Execution.objects.get(flow=flow, trigger=Execution.Trigger.RUN)
    assert run.num_error == 10
    page.click("button.run-action-retry")
    page.wait_for_selector(".messagelist .success")
    retry = Execution.objects.get(retry_of=run)
    assert f"/admin/executions/execution/{retry.pk}/change/" in page.url

    assert len(loads) <= MAX_PAGE_LOADS, "\n".join(loads)
