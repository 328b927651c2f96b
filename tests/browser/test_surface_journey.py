"""Seed 004's four steps in real Chromium: an integration account, the surface
configuration, an operation for REST Execute() and a view for REST Query(); then the
page's details and warnings, and a real Execute() call with the account's key."""

import pytest
import requests

from apps.accounts.models import Role, User
from apps.accounts.privileges import Privilege
from apps.accounts.services import create_api_key
from apps.flows.models import Application
from apps.records.models import RecordField, RecordType
from apps.surface.models import Operation, View
from tests.conftest import grant

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]
SURFACE = "/admin/surface/surfaceconfiguration/1/change/"


def save(page) -> None:
    page.click("input[name=_save]")
    message = page.wait_for_selector(".messagelist .success, .errornote")
    assert "successfully" in message.inner_text(), page.inner_text("#content")


def test_a_builder_opens_the_surface_to_an_integration_account_in_four_steps(page, live_server):
    User.objects.create_superuser("builder", password="builder-pass-123")
    application = Application.objects.create(name="Lead Registration")
    lead = RecordType.objects.create(application=application, name="Lead")
    RecordField.objects.create(record_type=lead, name="Company", required=True, position=0)
    RecordField.objects.create(
        record_type=lead, name="Rating", type="choice", choices=["Hot", "Warm"], position=1
    )
    register = Operation.objects.create(
        application=application, name="Register Lead", record_type=lead, action="create"
    )
    every = View.objects.create(application=application, name="All Leads", record_type=lead)
    callers = Role.objects.create(name="Surface callers")
    grant(callers, Privilege.USE_API_KEY, Privilege.EXECUTE_OPERATIONS, Privilege.QUERY_VIEWS)
    base = live_server.url

    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "builder")
    page.fill("#id_password", "builder-pass-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    page.goto(f"{base}{SURFACE}")
    assert "There are no accounts of Integration type" in page.inner_text("#content")

    # 1. An account of the Integration type.
    page.goto(f"{base}/admin/accounts/user/add/")
    page.fill("#id_username", "erp")
    page.select_option("#id_account_type", "integration")
    page.check("input[name=usable_password][value=false]")
    save(page)

    # 2. The surface configuration: Execute() and Query() on, for that account.
    page.goto(f"{base}{SURFACE}")
    page.check("#id_execute")
    page.check("#id_query")
    page.select_option("#id_integration_accounts_from", label="erp")
    page.click("#id_integration_accounts_add")
    save(page)

    # 3. and 4. The operation for REST Execute(), the view for REST Query().
    page.goto(f"{base}/admin/surface/operation/{register.pk}/change/")
    page.check("#id_rest_execute")
    save(page)
    page.goto(f"{base}/admin/surface/view/{every.pk}/change/")
    page.check("#id_rest_query")
    save(page)

    page.goto(f"{base}{SURFACE}")
    content = page.inner_text("#content")
    assert "There are no accounts of Integration type" not in content
    assert "No integration account has the privileges to call operation" in content
    execute_url = f"{base}/api/rest/execute/Lead%20Registration/Register%20Lead"
    assert execute_url in content
    details = page.locator("details", has_text="Example JSON payload")
    details.locator("summary").click()
    shown = details.inner_text()
    assert "curl -X POST" in shown
    assert '"Selection": "Hot"' in shown

    callers.members.add(User.objects.get(username="erp"))
    page.reload()
    assert "No integration account has the privileges" not in page.inner_text("#content")

    key = create_api_key(owner=User.objects.get(username="erp")).plaintext
    answer = requests.post(
        execute_url,
        json={"RecordID": None, "Company": "Acme", "Rating": {"Selection": "Hot"}},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["Rating"] == {"Selection": "Hot"}
