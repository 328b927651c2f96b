"""Execute(): POST /api/rest/execute/<Application>/<Operation>."""

import threading

import pytest
from django.db import connections

from apps.accounts.models import Role
from apps.executions.models import Execution
from apps.flows.models import Connection, Flow, Import
from apps.records import services as records
from apps.records.models import Record, RecordType
from apps.surface import services
from apps.surface.models import Operation
from tests.conftest import postgresql_only, sqlite_only
from tests.surface.conftest import operation, script_flow

URL = "/api/rest/execute/Lead%20Registration/"
REGISTER = URL + "Register%20Lead"
NEW_LEAD = {
    "RecordID": None,
    "ExternalTransactionId": None,
    "Company": "Acme",
    "Rating": {"Selection": "Warm"},
    "Interests": ["Cloud", {"Selection": "Support"}],
    "Employees": 120,
}


def test_an_integration_account_creates_a_record_and_gets_its_document(rest, register_lead):
    response = rest.post(REGISTER, NEW_LEAD, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    record = Record.objects.get()
    assert body["RecordID"] == record.pk
    assert body["CreatedBy"] == "restuser"
    assert body["SubmissionId"] == record.submission_id
    assert body["Company"] == "Acme"
    assert body["Rating"] == {"Selection": "Warm"}
    assert body["Interests"] == [{"Selection": "Cloud"}, {"Selection": "Support"}]
    assert "processId" not in body
    assert record.data["Rating"] == "Warm"


def test_an_update_changes_the_given_fields_and_answers_200(rest, update_lead, lead, restuser):
    record = records.create_record(record_type=lead, data={"Company": "Acme", "Rating": "Cold"})

    response = rest.post(
        URL + "Update%20Lead", {"RecordID": record.pk, "Rating": "Hot"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["Rating"] == {"Selection": "Hot"}
    assert response.json()["Company"] == "Acme"
    assert response.json()["ModifiedBy"] == "restuser"
    record.refresh_from_db()
    assert record.data["Rating"] == "Hot"


def test_a_delete_removes_the_record_and_answers_its_last_document(rest, delete_lead, lead):
    record = records.create_record(record_type=lead, data={"Company": "Acme"})

    response = rest.post(URL + "Delete%20Lead", {"RecordID": record.pk}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["RecordID"] == record.pk
    assert response.json()["Company"] == "Acme"
    assert not Record.objects.exists()


@pytest.mark.parametrize("name", ["Update%20Lead", "Delete%20Lead"])
def test_an_update_or_delete_of_an_unknown_record_is_404(rest, update_lead, delete_lead, name):
    response = rest.post(URL + name, {"RecordID": 999}, format="json")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert "999" in response.json()["detail"]


def test_an_update_without_a_record_id_is_400(rest, update_lead):
    response = rest.post(URL + "Update%20Lead", {"Rating": "Hot"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "#/RecordID"


def test_an_invalid_record_is_400_listing_every_field_with_the_allowed_values(rest, register_lead):
    response = rest.post(
        REGISTER,
        {"RecordID": None, "Rating": {"Selection": "Lukewarm"}, "Employees": "many", "Age": 3},
        format="json",
    )

    assert response.status_code == 400
    problem = response.json()
    assert response["Content-Type"] == "application/problem+json"
    errors = {error["pointer"]: error for error in problem["errors"]}
    assert set(errors) == {"#/Company", "#/Rating", "#/Employees", "#/Age"}
    assert errors["#/Rating"]["allowed"] == ["Hot", "Warm", "Cold"]
    assert "Lukewarm" in errors["#/Rating"]["detail"]
    assert errors["#/Company"]["detail"] == "This field is required."
    assert "Company" in problem["detail"]
    assert not Record.objects.exists()


def test_a_body_that_is_not_an_object_is_400(rest, register_lead):
    response = rest.post(REGISTER, [1, 2], format="json")

    assert response.status_code == 400


def test_without_an_api_key_the_call_is_401(api_client, surface_on, register_lead):
    response = api_client.post(REGISTER, NEW_LEAD, format="json")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


def test_with_execute_switched_off_the_call_is_403_saying_so(key_client, restuser, register_lead):
    services.configure_surface(query=True, integration_accounts=[restuser])

    response = key_client(restuser).post(REGISTER, NEW_LEAD, format="json")

    assert response.status_code == 403
    assert "Execute() is disabled in the surface configuration" in response.json()["detail"]


def test_an_integration_account_not_chosen_in_the_configuration_is_403(
    key_client, integration, surface_role, surface_on, register_lead
):
    surface_role.members.add(integration)

    response = key_client(integration).post(REGISTER, NEW_LEAD, format="json")

    assert response.status_code == 403
    assert "surface configuration" in response.json()["detail"]


def test_a_regular_account_is_always_403_even_a_superuser(
    key_client, owner, surface_on, register_lead
):
    response = key_client(owner).post(REGISTER, NEW_LEAD, format="json")

    assert response.status_code == 403
    assert "integration accounts" in response.json()["detail"]


def test_an_account_without_execute_operations_is_403_naming_it(
    key_client, restuser, surface_role, surface_on, register_lead
):
    surface_role.permissions.remove(*surface_role.permissions.filter(codename="execute_operations"))

    response = key_client(restuser).post(REGISTER, NEW_LEAD, format="json")

    assert response.status_code == 403
    assert "execute_operations" in response.json()["detail"]


@pytest.mark.parametrize(
    "path", ["Lead%20Registration/Nothing", "Nowhere/Register%20Lead", "Lead%20Registration/Hidden"]
)
def test_an_unknown_or_not_rest_enabled_operation_is_404(
    rest, register_lead, leads_app, lead, path
):
    operation(leads_app, lead, "Hidden", "create", rest_execute=False)

    response = rest.post(f"/api/rest/execute/{path}", NEW_LEAD, format="json")

    assert response.status_code == 404


def test_a_caller_without_a_role_the_operation_names_is_403(rest, register_lead, restuser):
    register_lead.roles.add(Role.objects.create(name="Sales"))

    response = rest.post(REGISTER, NEW_LEAD, format="json")

    assert response.status_code == 403
    assert response.json()["roles"] == ["Sales"]
    Role.objects.get(name="Sales").members.add(restuser)
    assert rest.post(REGISTER, NEW_LEAD, format="json").status_code == 201


def test_the_operations_flow_runs_with_the_record_and_its_process_id_is_answered(
    rest, register_lead, echo_flow
):
    register_lead.flow = echo_flow
    register_lead.save()

    response = rest.post(REGISTER, NEW_LEAD, format="json")

    assert response.status_code == 201, response.json()
    execution = Execution.objects.get(pk=response.json()["processId"])
    assert execution.status == "succeeded"
    assert execution.trigger == "execute"
    assert execution.input["RecordID"] == response.json()["RecordID"]
    assert "Acme" in str(execution.steps.get().debug_lines)


def test_a_failing_flow_rolls_the_record_back_and_answers_422_with_its_process_id(
    rest, register_lead, rejecting_flow
):
    register_lead.flow = rejecting_flow
    register_lead.save()

    response = rest.post(REGISTER, {**NEW_LEAD, "ExternalTransactionId": "t-1"}, format="json")

    assert response.status_code == 422
    problem = response.json()
    assert response["Content-Type"] == "application/problem+json"
    assert "rolled back" in problem["detail"]
    assert "no" in problem["detail"]
    assert not Record.objects.exists()
    execution = Execution.objects.get(pk=problem["processId"])  # the run is kept
    assert execution.status == "failed"
    assert execution.status_code == 422
    # Nothing was applied: the same transaction id may be sent again.
    register_lead.flow = None
    register_lead.save()
    retried = rest.post(REGISTER, {**NEW_LEAD, "ExternalTransactionId": "t-1"}, format="json")
    assert retried.status_code == 201


def test_a_failing_flow_of_an_update_leaves_the_record_as_it_was(
    rest, update_lead, rejecting_flow, lead
):
    record = records.create_record(record_type=lead, data={"Company": "Acme", "Rating": "Cold"})
    update_lead.flow = rejecting_flow
    update_lead.save()

    response = rest.post(
        URL + "Update%20Lead", {"RecordID": record.pk, "Rating": "Hot"}, format="json"
    )

    assert response.status_code == 422
    record.refresh_from_db()
    assert record.data["Rating"] == "Cold"


def test_the_answer_shows_the_record_as_the_operations_flow_left_it(
    rest, update_lead, lead, leads_app
):
    """The flow may write the record it was given (a data-tables import); the answer (and
    the receipt replayed for its transaction id) showed it as it was before the flow ran
    (an outside probe)."""
    record = records.create_record(record_type=lead, data={"Company": "Acme", "Rating": "Cold"})
    tables = Connection.objects.create(name="Data tables", type=Connection.Type.RECORDS)
    mark = Import.objects.create(
        name="Mark hot",
        connection=tables,
        records={"_recordTypeId": str(lead.pk), "action": "update"},
        body={"RecordID": "{{record.RecordID}}", "Rating": "Hot"},
    )
    update_lead.flow = Flow.objects.create(
        application=leads_app,
        name="mark",
        page_processors=[{"type": "import", "_importId": str(mark.pk)}],
    )
    update_lead.save()

    response = rest.post(
        URL + "Update%20Lead",
        {"RecordID": record.pk, "Company": "Acme Ltd", "ExternalTransactionId": "mark-1"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    record.refresh_from_db()
    assert record.data == {**record.data, "Company": "Acme Ltd", "Rating": "Hot"}
    assert response.json()["Company"] == "Acme Ltd"
    assert response.json()["Rating"] == {"Selection": "Hot"}
    assert response.json()["SubmissionId"] == record.submission_id
    replayed = rest.post(
        URL + "Update%20Lead",
        {"RecordID": record.pk, "Company": "Acme Ltd", "ExternalTransactionId": "mark-1"},
        format="json",
    )
    assert replayed.json()["Rating"] == {"Selection": "Hot"}


def test_an_operation_flow_may_call_a_sub_flow_for_a_surface_account(
    rest, register_lead, leads_app
):
    """Found by the review: the sub-flow check asked the surface account for run_flows,
    which Execute() never needs; the operation's flow is its builder's design."""
    child = script_flow(leads_app, "child", "function main(ctx) { return ctx.records; }")
    register_lead.flow = Flow.objects.create(
        application=leads_app,
        name="parent",
        page_processors=[{"type": "flow", "_flowId": str(child.pk)}],
    )
    register_lead.save()

    response = rest.post(REGISTER, NEW_LEAD, format="json")

    assert response.status_code == 201, response.json()


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_an_operation_whose_record_type_was_just_deleted_is_refused_not_a_500(
    register_lead, restuser
):
    """Another web process remembers an operation for 0.5 s, so a call right after it and
    its record type were deleted (an operation protects its record type) wrote a record of
    that type; the foreign key, checked at the commit, failed it: a 500 (left alone by an
    earlier session). PostgreSQL reads the field types before it writes, and refuses the
    fields."""
    remembered = (
        Operation.objects.select_related("record_type")
        .prefetch_related("record_type__fields")
        .get(pk=register_lead.pk)
    )
    delete_in_own_connection(register_lead)

    with pytest.raises(services.OperationGone, match="was deleted while the call ran"):
        services.execute_operation(
            operation=remembered, user=restuser, record_id=None, data={"Company": "Acme"}
        )
    assert not Record.objects.exists()


@postgresql_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("key", ["", "tx-1"])
def test_a_record_type_deleted_while_its_operation_flow_runs_is_404_not_a_500(
    rest, register_lead, echo_flow, monkeypatch, key
):
    """The record is inserted before the flow runs; its foreign key is checked at the
    commit, which failed when the record type was deleted meanwhile: a 500."""
    Operation.objects.filter(pk=register_lead.pk).update(flow=echo_flow)
    running = services._run_flow

    def deleted_meanwhile(*args):
        deleting = threading.Thread(target=delete_in_own_connection, args=[register_lead])
        deleting.start()
        deleting.join(10)
        return running(*args)

    monkeypatch.setattr(services, "_run_flow", deleted_meanwhile)

    answer = rest.post(REGISTER, {**NEW_LEAD, "ExternalTransactionId": key or None}, format="json")

    assert answer.status_code == 404, answer.json()
    assert answer["Content-Type"].startswith("application/problem+json")
    assert "was deleted while the call ran" in answer.json()["detail"]
    assert not Record.objects.exists()


def delete_in_own_connection(operation):
    """Delete the operation and its record type, as a builder would in the admin."""
    try:
        Operation.objects.filter(pk=operation.pk).delete()
        RecordType.objects.filter(pk=operation.record_type_id).delete()
    finally:
        connections.close_all()
