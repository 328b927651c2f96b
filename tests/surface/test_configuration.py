"""Seed 004's four steps, and the definitions they check."""

import pytest
from django.core.exceptions import ValidationError

from apps.accounts.models import User
from apps.flows.models import Application, Flow
from apps.records.models import RecordType
from apps.surface import services
from apps.surface.forms import SurfaceConfigurationForm
from apps.surface.models import Operation, SurfaceConfiguration, View

REGISTER = "/api/rest/execute/Lead%20Registration/Register%20Lead"
QUERY = "/api/rest/query/Lead%20Registration/All%20Leads"


def test_the_seeds_four_steps_open_execute_and_query_to_an_integration_account(
    key_client, restuser, leads_app, lead
):
    # 1. An integration account (restuser, with the Regular User role) and its key.
    client = key_client(restuser)
    operation = Operation.objects.create(
        application=leads_app, record_type=lead, name="Register Lead", action="create"
    )
    view = View.objects.create(application=leads_app, record_type=lead, name="All Leads")
    # Off by default: Execute() and Query() are refused.
    assert SurfaceConfiguration.load().execute is False
    assert SurfaceConfiguration.load().query is False
    assert client.post(REGISTER, {"Company": "Acme"}, format="json").status_code == 403
    assert client.get(QUERY).status_code == 403
    # 2. The surface configuration: Execute() and Query(), and the account.
    services.configure_surface(execute=True, query=True, integration_accounts=[restuser])
    # 3. and 4. Not yet enabled for REST: unknown to callers.
    assert client.post(REGISTER, {"Company": "Acme"}, format="json").status_code == 404
    assert client.get(QUERY).status_code == 404
    operation.rest_execute = True
    operation.save()
    view.rest_query = True
    view.save()

    created = client.post(REGISTER, {"RecordID": None, "Company": "Acme"}, format="json")
    listed = client.get(QUERY)

    assert created.status_code == 201
    assert listed.status_code == 200
    assert [document["RecordID"] for document in listed.json()] == [created.json()["RecordID"]]


def test_the_configuration_is_a_single_row(db):
    first = SurfaceConfiguration.load()
    SurfaceConfiguration(execute=True).save()

    assert SurfaceConfiguration.objects.count() == 1
    assert SurfaceConfiguration.load().pk == first.pk
    assert SurfaceConfiguration.load().execute is True


def test_only_integration_accounts_can_be_chosen(member, restuser):
    with pytest.raises(ValidationError, match="member"):
        services.configure_surface(integration_accounts=[restuser, member])

    assert not SurfaceConfiguration.load().integration_accounts.exists()


def test_the_form_offers_and_accepts_only_integration_accounts(member, restuser):
    form = SurfaceConfigurationForm(
        data={"execute": "on", "integration_accounts": [member.pk]},
        instance=SurfaceConfiguration.load(),
    )

    assert list(form.fields["integration_accounts"].queryset) == [restuser]
    assert not form.is_valid()
    assert "integration_accounts" in form.errors


def test_an_operation_needs_a_record_type_and_flow_of_its_own_application(leads_app, lead):
    other = Application.objects.create(name="Other")
    flow = Flow.objects.create(application=other, name="Elsewhere")
    foreign = RecordType.objects.create(application=other, name="Lead")

    operation = Operation(application=leads_app, record_type=foreign, name="X", flow=flow)

    with pytest.raises(ValidationError) as raised:
        operation.full_clean()
    assert set(raised.value.message_dict) == {"record_type", "flow"}


def test_an_operation_name_cannot_contain_a_slash(leads_app, lead):
    with pytest.raises(ValidationError, match="'/'"):
        Operation(application=leads_app, record_type=lead, name="a/b").full_clean()


def test_a_view_reports_every_problem_of_its_definition(leads_app, lead):
    view = View(
        application=leads_app,
        record_type=lead,
        name="Broken",
        fields=["Company", "Nope"],
        filters=[
            {"field": "Nope", "op": "eq", "value": 1},
            {"field": "Rating", "op": "like", "value": "Hot"},
            {"field": "Rating", "op": "eq", "parameter": "missing"},
            {"field": "Rating", "op": "eq", "value": "Lukewarm"},
            {"field": "Employees", "op": "gt", "value": 10, "parameter": "size"},
        ],
        parameters=[
            {"name": "limit", "type": "text"},
            {"name": "size", "type": "colour"},
        ],
        ordering=[{"field": "Interests", "direction": "up"}],
    )

    with pytest.raises(ValidationError) as raised:
        view.full_clean()

    errors = raised.value.message_dict
    assert set(errors) == {"fields", "filters", "parameters", "ordering"}
    text = str(errors)
    for expected in ("Nope", "like", "missing", "Lukewarm", "either a value", "limit", "colour"):
        assert expected in text, expected
    assert len(errors["ordering"]) == 2


def test_a_sound_view_passes(all_leads):
    all_leads.ordering = [{"field": "SubmissionId", "direction": "desc"}]
    all_leads.filters.append({"field": "Employees", "op": "isnull", "value": False})

    all_leads.full_clean()


def test_integration_accounts_are_of_the_integration_type(restuser, member):
    assert restuser.account_type == User.AccountType.INTEGRATION
    assert member.account_type == User.AccountType.REGULAR


def test_the_four_steps_through_the_management_api(manager, key_client, restuser, leads_app, lead):
    # 1. The integration account exists (accounts are made in the admin): its key.
    caller = key_client(restuser)
    # 2. The surface configuration.
    surface = {"execute": True, "query": True, "integrationAccounts": ["restuser"]}
    assert manager.patch("/api/v1/surface", surface, format="json").status_code == 200
    # 3. An operation for REST Execute().
    owner = {"_integrationId": str(leads_app.pk), "_recordTypeId": str(lead.pk)}
    operation = {"name": "Register Lead", "action": "create", "restExecute": True, **owner}
    assert manager.post("/api/v1/operations", operation, format="json").status_code == 201
    # 4. A view for REST Query(), with a URL parameter.
    view = {
        "name": "All Leads",
        "restQuery": True,
        "filters": [{"field": "Rating", "op": "eq", "parameter": "rating"}],
        "parameters": [{"name": "rating", "type": "text", "required": False}],
        **owner,
    }
    assert manager.post("/api/v1/views", view, format="json").status_code == 201

    for company, rating in (("Acme", "Hot"), ("Globex", "Cold")):
        lead_document = {"RecordID": None, "Company": company, "Rating": {"Selection": rating}}
        assert caller.post(REGISTER, lead_document, format="json").status_code == 201
    hot = caller.get(QUERY, {"rating": "Hot"})
    assert hot.status_code == 200
    assert [document["Company"] for document in hot.json()] == ["Acme"]
