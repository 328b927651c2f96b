"""The flow's diagram in real Chromium: a flow of every step kind is test-run from its page
(against a local server), then its page shows each step's records in and out and errors from
that run, as the engine recorded them, with a link to the run; the run's page shows the same
numbers and links to the sub-flow's run. With FLOWSITE_SCREENSHOTS=<folder> the flow page's
diagram is saved there (README shows docs/flow-diagram.png)."""

import os
import re
from pathlib import Path

import pytest
from werkzeug.wrappers import Response

from apps.executions.models import Execution, StepRun
from apps.flows.models import Application, Connection, Export, Flow, Import, Script
from tests.browser.test_run_page import sign_in

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def company(request):
    found = request.path.rsplit("/", 1)[-1]
    if found == "3":
        return Response('{"error": "no such company"}', 404, content_type="application/json")
    return Response(f'{{"id": {found}, "tier": "gold"}}', content_type="application/json")


@pytest.fixture
def orders(httpserver) -> Flow:
    httpserver.expect_request("/leads").respond_with_json(
        {"data": [{"id": 1, "name": "Acme"}, {"id": 2, "name": "Globex"}, {"id": 3, "name": "X"}]}
    )
    httpserver.expect_request("/companies/1").respond_with_handler(company)
    httpserver.expect_request("/companies/2").respond_with_handler(company)
    httpserver.expect_request("/companies/3").respond_with_handler(company)
    httpserver.expect_request("/erp", method="POST").respond_with_json({"id": 7})
    sales = Application.objects.create(name="Sales")
    crm = Connection.objects.create(
        name="CRM",
        base_uri=httpserver.url_for("/").rstrip("/"),
        allowed_private_hosts=["localhost", "127.0.0.1"],
    )
    leads = Export.objects.create(
        name="Leads", connection=crm, relative_uri="/leads", resource_path="data"
    )
    lookup = Export.objects.create(
        name="Company", connection=crm, relative_uri="/companies/{{record.id}}"
    )
    shape = Script.objects.create(
        name="Shape",
        content="function main(ctx) {\n  return ctx.records.filter(function (r) "
        "{ return r.name !== 'Globex'; });\n}",
    )
    push = Import.objects.create(name="Push to ERP", connection=crm, relative_uri="/erp")
    tag = Script.objects.create(name="Tag", content="function main(ctx) { return ctx.records; }")
    notify = Flow.objects.create(
        application=sales,
        name="notify",
        page_processors=[{"type": "script", "_scriptId": str(tag.pk)}],
    )
    return Flow.objects.create(
        application=sales,
        name="sync-orders",
        skip_retries=True,
        schedule="0 2 * * *",
        api={"enabled": True, "method": "POST", "path": "/orders", "mode": "async"},
        page_generators=[{"_exportId": str(leads.pk)}],
        page_processors=[
            {"type": "export", "_exportId": str(lookup.pk), "proceedOnFailure": True},
            {"type": "script", "_scriptId": str(shape.pk)},
            {"type": "flow", "_flowId": str(notify.pk)},
            {"type": "import", "_importId": str(push.pk)},
        ],
    )


def shown(page, path: str) -> tuple[str, str, str]:
    box = page.locator(f'#flow-diagram [data-step="{path}"]')
    counters = []
    for name in ("in", "out", "errors"):
        found = box.locator(f".diagram-{name}")
        counters.append(found.inner_text() if found.count() else "")
    return tuple(counters)


def recorded(run: Execution) -> dict[str, tuple[str, str, str]]:
    return {
        step.path: (
            "" if step.path.startswith("pageGenerators") else str(step.records_in),
            str(step.records_out),
            str(step.errors),
        )
        for step in StepRun.objects.filter(execution=run)
    }


def test_the_diagram_shows_the_last_runs_numbers_on_the_flow_and_run_pages(
    page, live_server, orders
):
    base = live_server.url
    sign_in(page, base)
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(f"{base}/admin/flows/flow/{orders.pk}/change/")
    diagram = page.locator("#flow-diagram")
    assert diagram.is_visible()
    assert "No run yet" in diagram.inner_text()
    assert "POST /api/resources/orders · async" in diagram.inner_text()

    page.click("a.test-run-link")
    page.click("input[name=_run]")
    page.wait_for_selector("#test-run-result")
    run = Execution.objects.get(flow=orders)
    steps = recorded(run)
    assert len(steps) == 5, steps
    assert steps["pageGenerators[0]"][1] == "3"
    assert steps["pageProcessors[0]"][2] == "1"  # company 3 is not found, and goes on

    page.goto(f"{base}/admin/flows/flow/{orders.pk}/change/")
    for path, counters in steps.items():
        assert shown(page, path) == counters, path
    assert "diagram-has-errors" in page.get_attribute(
        '#flow-diagram [data-step="pageProcessors[0]"]', "class"
    )
    assert page.is_visible('#flow-diagram [data-step="pageProcessors[0]"] .diagram-proceeds')
    if folder := os.environ.get("FLOWSITE_SCREENSHOTS"):
        top = page.locator("fieldset:has(div.field-pipeline)").bounding_box()
        box = diagram.bounding_box()
        page.screenshot(
            path=str(Path(folder) / "flow-diagram.png"),
            full_page=True,
            clip={
                "x": top["x"],
                "y": top["y"],
                "width": top["width"],
                "height": box["y"] + box["height"] + 12 - top["y"],
            },
        )

    page.click("#flow-diagram a.diagram-run-link")
    page.wait_for_url(f"**/executions/execution/{run.pk}/change/")
    assert "This run" in page.inner_text("#flow-diagram")
    for path, counters in steps.items():
        assert shown(page, path) == counters, path

    children = Execution.objects.filter(parent=run)
    assert children.count() == 2  # a sub-flow is called per record: Acme and X
    link = page.locator('#flow-diagram [data-step="pageProcessors[2]"] a.diagram-subflow-runs')
    assert link.inner_text() == "2 sub-flow runs"
    link.click()
    page.wait_for_selector("#result_list")
    assert page.locator("#result_list tbody tr").count() == 2
    page.click("#result_list tbody tr >> nth=0 >> th a")
    page.wait_for_url(re.compile(r"/executions/execution/[0-9a-f-]{36}/change/"))
    child = children.get(pk=re.search(r"execution/([0-9a-f-]{36})/", page.url).group(1))
    assert "from run " + str(run.pk)[:8] in page.inner_text("#flow-diagram .diagram-trigger")
    assert shown(page, "pageProcessors[0]") == recorded(child)["pageProcessors[0]"]
