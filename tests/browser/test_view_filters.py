"""A view's filters built as rows in real Chromium: no JSON typed, rows added and removed."""

import pytest

from apps.accounts.models import User
from apps.flows.models import Application
from apps.records.models import RecordField, RecordType
from apps.surface.models import View

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_a_builder_filters_a_view_with_rows_and_no_json(page, live_server):
    User.objects.create_superuser("builder", password="builder-pass-123")
    application = Application.objects.create(name="Lead Registration")
    lead = RecordType.objects.create(application=application, name="Lead")
    RecordField.objects.create(record_type=lead, name="Company", required=True, position=0)
    RecordField.objects.create(
        record_type=lead, name="Rating", type="choice", choices=["Hot", "Warm"], position=1
    )
    view = View.objects.create(
        application=application,
        name="Leads by Rating",
        record_type=lead,
        parameters=[{"name": "rating", "type": "text"}],
    )
    base = live_server.url
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "builder")
    page.fill("#id_password", "builder-pass-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")

    page.goto(f"{base}/admin/surface/view/{view.pk}/change/")
    rows = page.locator(".filter-rows .filter-row")
    assert rows.count() == 2  # empty rows to fill
    rows.nth(0).locator("[name=filters-field]").fill("Rating")
    rows.nth(0).locator("[name=filters-source]").select_option("parameter")
    rows.nth(0).locator("[name=filters-value]").fill("rating")
    rows.nth(1).locator("[name=filters-field]").fill("Company")
    rows.nth(1).locator("[name=filters-value]").fill("Initech")
    page.click(".filter-rows .filter-add")
    assert rows.count() == 3
    rows.nth(2).locator("[name=filters-field]").fill("Company")
    rows.nth(2).locator("[name=filters-op]").select_option("contains")
    rows.nth(2).locator("[name=filters-value]").fill("Acme")
    rows.nth(1).locator(".filter-remove").click()  # Initech goes
    assert rows.count() == 2
    assert not page.locator("[name=filters-use_json]").is_checked()
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success")

    view.refresh_from_db()
    assert view.filters == [
        {"field": "Rating", "op": "eq", "parameter": "rating"},
        {"field": "Company", "op": "contains", "value": "Acme"},
    ]
    shown = page.locator(".filter-rows [name=filters-field]")
    assert [shown.nth(i).input_value() for i in range(shown.count())] == ["Rating", "Company", ""]

    # A mistake is named as in the JSON, and the rows stay as typed.
    rows.nth(1).locator("[name=filters-field]").fill("Colour")
    page.click("input[name=_continue]")
    error = page.wait_for_selector(".errorlist")
    assert "filters[1].field: 'Colour' is not a field" in error.inner_text()
    assert page.locator(".filter-rows [name=filters-field]").nth(1).input_value() == "Colour"
