"""The seed's "Lead Registration" app on the integration surface (Flowfinity REST)."""

import pytest

from apps.accounts.models import Role, User
from apps.accounts.privileges import Privilege
from apps.flows.models import Application, Flow, Script
from apps.records.models import RecordField, RecordType
from apps.surface import services
from apps.surface.models import Operation, View
from tests.conftest import grant


@pytest.fixture
def leads_app(db) -> Application:
    return Application.objects.create(name="Lead Registration")


@pytest.fixture
def lead(leads_app) -> RecordType:
    record_type = RecordType.objects.create(application=leads_app, name="Lead")
    RecordField.objects.create(record_type=record_type, name="Company", required=True, position=0)
    RecordField.objects.create(
        record_type=record_type,
        name="Rating",
        type="choice",
        choices=["Hot", "Warm", "Cold"],
        position=1,
    )
    RecordField.objects.create(
        record_type=record_type,
        name="Interests",
        type="multi-choice",
        choices=["Cloud", "Mobile", "Support"],
        position=2,
    )
    RecordField.objects.create(
        record_type=record_type, name="Employees", type="integer", position=3
    )
    return record_type


@pytest.fixture
def surface_role(db) -> Role:
    """Flowfinity's 'Regular User' role for the integration account."""
    role = Role.objects.create(name="Regular User")
    grant(role, Privilege.USE_API_KEY, Privilege.EXECUTE_OPERATIONS, Privilege.QUERY_VIEWS)
    return role


@pytest.fixture
def restuser(db, surface_role) -> User:
    user = User.objects.create_user(
        "restuser", password="rest-pass-123", account_type=User.AccountType.INTEGRATION
    )
    surface_role.members.add(user)
    return user


@pytest.fixture
def surface_on(restuser):
    return services.configure_surface(execute=True, query=True, integration_accounts=[restuser])


def operation(application, record_type, name, action, **fields) -> Operation:
    found = Operation(
        application=application,
        record_type=record_type,
        name=name,
        action=action,
        **{"rest_execute": True, **fields},
    )
    found.full_clean()
    found.save()
    return found


@pytest.fixture
def register_lead(leads_app, lead) -> Operation:
    return operation(leads_app, lead, "Register Lead", "create")


@pytest.fixture
def update_lead(leads_app, lead) -> Operation:
    return operation(leads_app, lead, "Update Lead", "update")


@pytest.fixture
def delete_lead(leads_app, lead) -> Operation:
    return operation(leads_app, lead, "Delete Lead", "delete")


@pytest.fixture
def all_leads(leads_app, lead) -> View:
    view = View(
        application=leads_app,
        record_type=lead,
        name="All Leads",
        rest_query=True,
        filters=[{"field": "Rating", "op": "eq", "parameter": "rating"}],
        parameters=[{"name": "rating", "type": "choice", "required": False}],
    )
    view.full_clean()
    view.save()
    return view


@pytest.fixture
def rest(key_client, restuser, surface_on):
    """An API client of the integration account, with the surface switched on."""
    return key_client(restuser)


def script_flow(application, name: str, source: str) -> Flow:
    script = Script.objects.create(name=name, content=source)
    return Flow.objects.create(
        application=application,
        name=name,
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
    )


@pytest.fixture
def rejecting_flow(leads_app) -> Flow:
    return script_flow(leads_app, "Reject", "function main(ctx) { error('no', 422); }")


@pytest.fixture
def echo_flow(leads_app) -> Flow:
    return script_flow(
        leads_app,
        "Echo",
        "function main(ctx) { debug(ctx.trigger.args.input.Company); return ctx.records; }",
    )
