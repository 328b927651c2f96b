"""A builder renames a data table's field in real Chromium and its values follow; deleting
a field a view filters on is refused, naming the view."""

from pathlib import Path

import pytest

from apps.flows.models import Application
from apps.records import services
from apps.records.models import Record, RecordField, RecordType
from apps.surface.models import View
from tests.browser.test_run_page import sign_in

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
DOCS = Path(__file__).parents[2] / "docs"


def test_a_builder_renames_a_field_and_cannot_delete_one_a_view_filters_on(page, live_server):
    application = Application.objects.create(name="Lead Registration")
    lead = RecordType.objects.create(application=application, name="Lead")
    RecordField.objects.create(record_type=lead, name="Company", position=0)
    RecordField.objects.create(
        record_type=lead, name="Rating", type="choice", choices=["Hot", "Warm"], position=1
    )
    acme = services.create_record(record_type=lead, data={"Company": "Acme", "Rating": "Hot"})
    View.objects.create(
        application=application,
        name="Hot leads",
        record_type=lead,
        filters=[{"field": "Rating", "op": "eq", "value": "Hot"}],
    )
    base = live_server.url
    sign_in(page, base)

    page.goto(f"{base}/admin/records/recordtype/{lead.pk}/change/")
    page.fill("#id_fields-0-name", "Organisation")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")
    assert Record.objects.get(pk=acme.pk).data["Organisation"] == "Acme"

    page.check("#id_fields-1-DELETE")
    page.click("input[name=_continue]")
    error = page.wait_for_selector(".errornote, .errorlist.nonform")
    shown = page.inner_text("#fields-group")
    assert 'The view "Hot leads" would break: filters[0].field:' in shown
    assert "Change the view first." in shown
    assert lead.fields.filter(name="Rating").exists()
    assert error.is_visible()
    page.locator("#fields-group").screenshot(path=str(DOCS / "field-change-refused.png"))


def test_a_builder_empties_a_table_only_after_saying_yes(page, live_server):
    application = Application.objects.create(name="Lead Registration")
    lead = RecordType.objects.create(application=application, name="Lead")
    RecordField.objects.create(record_type=lead, name="Company", position=0)
    for company in ("Acme", "Globex"):
        services.create_record(record_type=lead, data={"Company": company})
    sign_in(page, live_server.url)

    page.goto(f"{live_server.url}/admin/records/recordtype/")
    page.check(f"input[name=_selected_action][value='{lead.pk}']")
    page.select_option("select[name=action]", "empty")
    page.click("button[name=index]")
    page.wait_for_selector("#tables-to-empty")
    assert "Lead (Lead Registration): 2 records" in page.inner_text("#tables-to-empty")
    assert Record.objects.filter(record_type=lead).count() == 2  # nothing yet

    page.click("input[value='Yes, delete 2 records']")
    page.wait_for_selector(".messagelist .success")
    assert not Record.objects.filter(record_type=lead).exists()
