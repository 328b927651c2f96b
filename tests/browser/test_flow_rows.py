"""A flow built from rows in real Chromium: steps picked by name with search, reordered,
removed; the API set with fields. Nothing is typed as JSON or as an id. With
FLOWSITE_SCREENSHOTS=<folder> the page is saved there (README shows docs/flow-rows.png)."""

import os
from pathlib import Path

import pytest

from apps.accounts.models import User
from apps.flows.models import Application, Connection, Export, Flow, Import, Script

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def sign_in(page, base: str) -> None:
    User.objects.create_superuser("builder", password="builder-pass-123")
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "builder")
    page.fill("#id_password", "builder-pass-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def pick(page, editor: str, row: int, search: str) -> None:
    """Open the row's searching picker, type, and take the first match."""
    page.click(f"{editor} tbody tr:nth-child({row}) .select2-selection")
    page.fill(".select2-container--open .select2-search__field", search)
    page.keyboard.press("Enter")


def test_a_builder_wires_a_flow_from_rows_and_exposes_it(page, live_server):
    sales = Application.objects.create(name="Sales")
    crm = Connection.objects.create(name="CRM", base_uri="https://crm.example.com")
    leads = Export.objects.create(application=sales, name="Hot leads", connection=crm)
    Export.objects.create(application=sales, name="Cold leads", connection=crm)
    shout = Script.objects.create(application=sales, name="Shout", content="function main(c){}")
    write = Import.objects.create(application=sales, name="Write to CRM", connection=crm)
    flow = Flow.objects.create(application=sales, name="Leads")
    sign_in(page, live_server.url)

    page.goto(f"{live_server.url}/admin/flows/flow/{flow.pk}/change/")
    page.click("#id_generator_rows .row-add")
    pick(page, "#id_generator_rows", 1, "hot")
    page.click("#id_processor_rows .row-add")
    pick(page, "#id_processor_rows", 1, "crm")
    page.click("#id_processor_rows .row-add")
    pick(page, "#id_processor_rows", 2, "shou")
    page.fill("#id_processor_rows tbody tr:nth-child(2) [name=processor_rows-function]", "main")
    page.click("#id_processor_rows .row-add")
    pick(page, "#id_processor_rows", 3, "cold")
    page.click("#id_processor_rows tbody tr:nth-child(3) .row-remove")
    page.click("#id_processor_rows tbody tr:nth-child(2) .row-up")  # the script goes first
    assert page.inner_text("#id_processor_rows tbody tr:nth-child(1) .row-number") == "1"
    page.select_option(
        "#id_processor_rows tbody tr:nth-child(2) [name=processor_rows-on_failure]", "proceed"
    )
    page.fill(
        "#id_processor_rows tbody tr:nth-child(2) [name=processor_rows-mapping]", "id → crmId"
    )
    page.click("#id_variable_rows .row-add")
    page.fill("#id_variable_rows tbody tr:nth-child(1) [name=variable_rows-name]", "region")
    page.fill("#id_variable_rows tbody tr:nth-child(1) [name=variable_rows-value]", "EU")
    page.check("#id_endpoint_enabled")
    page.fill("#id_endpoint_path", "/leads")
    if folder := os.environ.get("FLOWSITE_SCREENSHOTS"):
        page.screenshot(path=str(Path(folder) / "flow-rows.png"), full_page=True)
    page.click("input[name=_continue]")
    message = page.wait_for_selector(".messagelist .success, .errornote")
    assert "was changed successfully" in message.inner_text(), page.inner_text("#content")

    flow.refresh_from_db()
    assert flow.page_generators == [{"_exportId": str(leads.pk)}]
    assert flow.page_processors == [
        {"type": "script", "_scriptId": str(shout.pk), "function": "main"},
        {
            "type": "import",
            "_importId": str(write.pk),
            "proceedOnFailure": True,
            "responseMapping": {"fields": [{"extract": "id", "generate": "crmId"}]},
        },
    ]
    assert flow.variables == {"region": "EU"}
    assert (flow.api_enabled, flow.api_method, flow.api_path) == (True, "GET", "/leads")
    # The saved page shows the rows back, named.
    assert "Shout · script" in page.inner_text("#id_processor_rows tbody tr:nth-child(1)")
    assert page.is_visible("#endpoint-panel .endpoint-urls")
