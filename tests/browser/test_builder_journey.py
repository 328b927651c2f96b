"""The builder's main journey in real Chromium (Debian's, driven by Playwright)."""

import pytest

from apps.accounts.models import User

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def fill_json(page, field: str, value: str) -> None:
    page.fill(f"[name={field}]", value)


def save(page, button: str = "_save") -> None:
    page.click(f"input[name={button}]")
    message = page.wait_for_selector(".messagelist .success, .errornote")
    assert "was added successfully" in message.inner_text(), page.inner_text("#content")


def test_a_builder_creates_a_flow_test_runs_it_and_reads_the_execution(
    page, live_server, httpserver
):
    httpserver.expect_request("/leads").respond_with_json(
        {"data": [{"company": "Acme", "rating": "Hot"}, {"company": "Globex", "rating": "Cold"}]}
    )
    User.objects.create_superuser("builder", password="builder-pass-123")
    base = live_server.url

    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "builder")
    page.fill("#id_password", "builder-pass-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")

    page.goto(f"{base}/admin/flows/application/add/")
    page.fill("#id_name", "Sales")
    save(page)

    page.goto(f"{base}/admin/flows/connection/add/")
    page.fill("#id_name", "Lead API")
    page.fill("#id_base_uri", httpserver.url_for("/").rstrip("/"))
    page.click("summary:has-text('Advanced')")  # the collapsed section
    page.fill("#id_allowed_private_hosts", "localhost\n127.0.0.1")  # one a line
    save(page)

    page.goto(f"{base}/admin/flows/export/add/")
    page.fill("#id_name", "Hot leads")
    page.select_option("#id_connection", label="Lead API")
    page.fill("#id_relative_uri", "/leads")
    page.fill("#id_resource_path", "data")
    save(page)

    page.goto(f"{base}/admin/flows/script/add/")
    page.fill("#id_name", "Shout")
    page.evaluate(  # the code editor stands in for the textarea #id_content
        "(text) => document.querySelector('#id_content').editor.setValue(text)",
        "function main(ctx) {\n  debug('got', ctx.records.length);\n"
        "  return ctx.records.map(function (r) { return {company: r.company.toUpperCase()}; });\n}",
    )
    save(page)

    from apps.flows.models import Export, Script

    export_id, script_id = Export.objects.get().pk, Script.objects.get().pk
    page.goto(f"{base}/admin/flows/flow/add/")
    page.select_option("#id_application", label="Sales")
    page.fill("#id_name", "Shout leads")
    fill_json(page, "page_generators", f'[{{"_exportId": "{export_id}"}}]')
    fill_json(page, "page_processors", f'[{{"type": "script", "_scriptId": "{script_id}"}}]')
    save(page, "_continue")
    assert "transforms" in page.inner_text("div.field-pipeline")

    page.click("a.test-run-link")
    page.click("input[name=_run]")
    result = page.wait_for_selector("#test-run-result")
    assert "Succeeded" in result.inner_text()
    assert "ACME" in page.inner_text("pre.run-response")

    page.click("#test-run-result a[href*='/admin/executions/execution/']")
    page.wait_for_selector("#execution-steps")
    steps = page.inner_text("#execution-steps")
    assert "pageProcessors[0]" in steps
    assert "GLOBEX" in steps  # the script step's output sample
    assert "got 2" in steps  # its debug line
