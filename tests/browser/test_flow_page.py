"""A flow's page in Chromium: the schedule said in words, its time zone picked from a list,
the next runs shown in that zone after saving (with FLOWSITE_SCREENSHOTS=<folder> the
section is saved there: docs/flow-schedule.png); the endpoint panel's Try it for a GET sends
the payload as edited, as query parameters."""

import os
from pathlib import Path

import pytest

from apps.flows.models import Application, Flow
from tests.browser.test_run_page import sign_in

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_a_schedule_is_read_in_words_and_its_time_zone_picked(page, live_server):
    application = Application.objects.create(name="Sales")
    flow = Flow.objects.create(application=application, name="Nightly sync", schedule="0 2 * * *")
    base = live_server.url
    sign_in(page, base)

    page.goto(f"{base}/admin/flows/flow/{flow.pk}/change/")
    assert "At 02:00, every day (UTC)" in page.inner_text("div.field-next_run")
    page.select_option("select#id_timezone", "Europe/Amsterdam")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")

    shown = page.inner_text("div.field-next_run")
    assert "At 02:00, every day (Europe/Amsterdam). Next:" in shown
    assert "CET" in shown or "CEST" in shown
    flow.refresh_from_db()
    assert flow.timezone == "Europe/Amsterdam"
    if folder := os.environ.get("FLOWSITE_SCREENSHOTS"):
        section = page.locator("fieldset:has(div.field-schedule)")
        section.scroll_into_view_if_needed()
        section.screenshot(path=str(Path(folder) / "flow-schedule.png"))


def test_try_it_for_get_sends_the_edited_payload_as_query_parameters(page, live_server):
    from apps.flows.models import Script

    application = Application.objects.create(name="Sales")
    script = Script.objects.create(
        name="greet",
        content="function main(ctx) { return {statusCode: 200, "
        "result: 'Hello ' + ctx.trigger.args.request.query.name}; }",
    )
    flow = Flow.objects.create(
        application=application,
        name="greeting",
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
        api={
            "enabled": True,
            "method": "GET",
            "path": "/greeting",
            "mode": "sync",
            "inputSchema": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
    )
    base = live_server.url
    sign_in(page, base)
    page.goto(f"{base}/admin/flows/flow/{flow.pk}/change/")

    page.fill("#endpoint-payload", '{"name": "Zed", "nested": {"left": "out"}}')
    page.click("#endpoint-panel button.endpoint-try >> nth=0")
    page.wait_for_function(  # a function: a string expression is eval'ed, which CSP refuses
        "() => document.querySelector('#endpoint-result .endpoint-status')"
        ".textContent.startsWith('200')"
    )
    assert "Hello Zed" in page.inner_text("#endpoint-result .endpoint-response")

    page.fill("#endpoint-payload", "[1, 2]")
    page.click("#endpoint-panel button.endpoint-try >> nth=0")
    assert "Not sent" in page.inner_text("#endpoint-result .endpoint-status")


def test_a_script_is_tried_on_sample_records_and_its_error_line_shown(page, live_server):
    from apps.flows.models import Script

    script = Script.objects.create(
        name="Shout",
        content="function main(ctx) {\n  debug('got', ctx.records.length);\n"
        "  var first = ctx.records[0].company.toUpperCase();\n"
        "  return ctx.records.map(function (r) { return {company: first}; });\n}",
    )
    base = live_server.url
    sign_in(page, base)
    page.goto(f"{base}/admin/flows/script/{script.pk}/change/")
    page.click("a.script-test-link")
    page.fill("#id_records", '[{"name": "no company"}, {"company": "Acme"}]')
    page.click("input[name=_test]")
    assert "Failed at line 3" in page.inner_text("#script-test-result h2")
    assert "got 2" in page.inner_text("#script-test-result")
    assert page.is_visible("div.script-source div.failed")
    if folder := os.environ.get("FLOWSITE_SCREENSHOTS"):
        page.set_viewport_size({"width": 1280, "height": 1000})
        page.screenshot(path=str(Path(folder) / "script-test.png"), full_page=True)

    page.fill("#id_records", '[{"company": "Acme"}]')
    page.click("input[name=_test]")
    assert '"ACME"' in page.inner_text("pre.script-output")


def test_a_connection_is_tested_from_its_page(page, live_server, httpserver):
    from apps.flows.models import Connection

    httpserver.expect_request("/me").respond_with_json({"user": "integration", "plan": "pro"})
    allowed = Connection.objects.create(
        name="CRM",
        base_uri=httpserver.url_for("/").rstrip("/"),
        allowed_private_hosts=["localhost", "127.0.0.1"],
    )
    refused = Connection.objects.create(name="Intranet", base_uri="http://10.0.0.7:8080")
    base = live_server.url
    sign_in(page, base)

    page.goto(f"{base}/admin/flows/connection/{allowed.pk}/change/")
    page.click("a.connection-test-link")
    page.fill("#id_path", "/me")
    page.click("input[name=_test]")
    assert "Reached: HTTP 200" in page.inner_text("#connection-test-result h2")
    assert "integration" in page.inner_text("pre.connection-excerpt")

    page.goto(f"{base}/admin/flows/connection/{refused.pk}/test/")
    page.click("input[name=_test]")
    assert "FLOWSITE_ALLOW_PRIVATE_NETWORKS" in page.inner_text("#connection-test-result")
    if folder := os.environ.get("FLOWSITE_SCREENSHOTS"):
        page.set_viewport_size({"width": 1280, "height": 720})
        page.locator("#content").screenshot(path=str(Path(folder) / "connection-test.png"))


def test_an_export_is_previewed_from_its_page(page, live_server, httpserver):
    from apps.flows.models import Connection, Export

    httpserver.expect_request("/leads").respond_with_json(
        {"data": [{"company": "Acme", "rating": "Hot"}, {"company": "Globex", "rating": "Cold"}]}
    )
    crm = Connection.objects.create(
        name="CRM",
        base_uri=httpserver.url_for("/").rstrip("/"),
        allowed_private_hosts=["localhost", "127.0.0.1"],
    )
    export = Export.objects.create(
        name="Leads", connection=crm, relative_uri="/leads", resource_path="data"
    )
    base = live_server.url
    sign_in(page, base)
    page.goto(f"{base}/admin/flows/export/{export.pk}/change/")
    page.click("a.export-preview-link")
    page.click("input[name=_preview]")
    assert "2 records on the first page" in page.inner_text("#export-preview-result h2")
    assert "Globex" in page.inner_text("pre.export-records")
    if folder := os.environ.get("FLOWSITE_SCREENSHOTS"):
        page.set_viewport_size({"width": 1280, "height": 720})
        page.locator("#content").screenshot(path=str(Path(folder) / "export-preview.png"))


def test_an_import_is_dry_run_from_its_page(page, live_server, httpserver):
    from apps.flows.models import Connection, Import

    crm = Connection.objects.create(
        name="CRM",
        base_uri=httpserver.url_for("/").rstrip("/"),
        allowed_private_hosts=["localhost", "127.0.0.1"],
    )
    record_import = Import.objects.create(
        name="Create lead",
        connection=crm,
        relative_uri="/leads",
        body={"name": "{{record.company}}", "source": "flowsite"},
    )
    base = live_server.url
    sign_in(page, base)
    page.goto(f"{base}/admin/flows/import/{record_import.pk}/change/")
    page.click("a.import-dry-run-link")
    page.fill("#id_records", '[{"company": "Acme"}]')
    page.click("input[name=_dry_run]")
    shown = page.inner_text("pre.import-request")
    assert shown.startswith(f"POST {crm.base_uri}/leads")
    assert '"name": "Acme"' in shown
    assert len(httpserver.log) == 0
    if folder := os.environ.get("FLOWSITE_SCREENSHOTS"):
        page.set_viewport_size({"width": 1280, "height": 720})
        page.locator("#content").screenshot(path=str(Path(folder) / "import-dry-run.png"))
