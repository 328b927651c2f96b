"""The surface configuration page and the operation and view admins."""

import json

import pytest

from apps.accounts.models import Role, User
from apps.surface import services
from apps.surface.models import SurfaceConfiguration

PAGE = "/admin/surface/surfaceconfiguration/1/change/"


@pytest.fixture
def admin_client(client, owner):
    client.force_login(owner)
    return client


def test_the_changelist_leads_to_the_one_configuration(admin_client):
    response = admin_client.get("/admin/surface/surfaceconfiguration/")

    assert response.status_code == 302
    assert response["Location"] == PAGE


def test_the_configuration_cannot_be_added_twice_or_deleted(admin_client):
    SurfaceConfiguration.load()

    assert admin_client.get("/admin/surface/surfaceconfiguration/add/").status_code == 403
    assert admin_client.get(PAGE.replace("change/", "delete/")).status_code == 403


def test_without_integration_accounts_the_page_warns(admin_client, register_lead):
    content = admin_client.get(PAGE).content.decode()

    assert "There are no accounts of Integration type" in content
    assert "No integration account has the privileges to call operation" in content


def test_the_page_lists_each_rest_operation_and_view_with_details_and_warnings(
    admin_client, restuser, register_lead, all_leads, surface_on
):
    register_lead.roles.add(Role.objects.create(name="Sales"))  # restuser is not a member

    response = admin_client.get(PAGE)

    assert response.status_code == 200
    content = response.content.decode()
    assert "http://testserver/api/rest/execute/Lead%20Registration/Register%20Lead" in content
    assert "http://testserver/api/rest/query/Lead%20Registration/All%20Leads?rating=" in content
    assert "curl -X POST" in content
    assert "Authorization: Bearer &lt;API key&gt;" in content
    entries = {entry["kind"]: entry for entry in response.context["surface"]["entries"]}
    payload = json.loads(entries["Operation"]["payload"])
    assert payload == {
        "RecordID": None,
        "ExternalTransactionId": "2f1c7a52-0001",
        "Company": "Some text",
        "Rating": {"Selection": "Hot"},
        "Interests": [{"Selection": "Cloud"}, {"Selection": "Mobile"}],
        "Employees": 42,
    }
    assert "&quot;Rating&quot;: {" in content  # the example payload, on the page
    assert "<summary>details</summary>" in content
    warnings = response.context["surface"]["warnings"]
    assert warnings == [
        "No integration account has the privileges to call operation Lead Registration / "
        "Register Lead: it needs 'execute_operations' and a role of: Sales."
    ]
    assert warnings[0].replace("'", "&#x27;") in content
    assert entries["View"]["callers"] == ["restuser"]


def test_an_integration_account_without_the_privilege_is_warned_about(
    admin_client, surface_role, all_leads, surface_on
):
    surface_role.permissions.remove(*surface_role.permissions.filter(codename="query_views"))

    content = admin_client.get(PAGE).content.decode()

    assert "No integration account has the privileges to call view" in content
    assert "There are no accounts of Integration type" not in content


def test_saving_the_page_switches_the_surface_on(admin_client, restuser):
    response = admin_client.post(
        PAGE, {"execute": "on", "query": "on", "integration_accounts": [restuser.pk]}
    )

    assert response.status_code == 302
    configuration = SurfaceConfiguration.load()
    assert configuration.execute
    assert configuration.query
    assert list(configuration.integration_accounts.all()) == [restuser]


def test_the_operation_and_view_pages_open(admin_client, register_lead, all_leads):
    for url in (
        "/admin/surface/operation/",
        "/admin/surface/operation/add/",
        f"/admin/surface/operation/{register_lead.pk}/change/",
        "/admin/surface/view/",
        "/admin/surface/view/add/",
        f"/admin/surface/view/{all_leads.pk}/change/",
        "/admin/surface/executereceipt/",
    ):
        assert admin_client.get(url).status_code == 200, url


def test_the_view_admin_refuses_filters_on_unknown_fields(admin_client, all_leads, leads_app, lead):
    response = admin_client.post(
        f"/admin/surface/view/{all_leads.pk}/change/",
        {
            "application": leads_app.pk,
            "name": "All Leads",
            "description": "",
            "record_type": lead.pk,
            "rest_query": "on",
            "fields": "[]",
            "parameters": "[]",
            "filters": '[{"field": "Nope", "op": "eq", "value": 1}]',
            "ordering": "[]",
        },
    )

    assert response.status_code == 200
    assert "Nope" in response.context["adminform"].form.errors["filters"][0]


def test_an_integration_account_cannot_open_the_admin(client, restuser):
    services.configure_surface(integration_accounts=[restuser])
    client.force_login(restuser)

    assert client.get(PAGE).status_code == 302
    assert User.objects.filter(account_type="integration").count() == 1
