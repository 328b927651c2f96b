"""ExternalTransactionId: the same id from the same account is applied once."""

import threading

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from apps.accounts.services import create_api_key
from apps.records.models import Record
from apps.surface.models import ExecuteReceipt
from tests.surface.conftest import operation

REGISTER = "/api/rest/execute/Lead%20Registration/Register%20Lead"
LEAD = {"RecordID": None, "ExternalTransactionId": "erp-42", "Company": "Acme"}


def test_the_same_transaction_id_answers_the_first_answer_and_applies_once(rest, register_lead):
    first = rest.post(REGISTER, LEAD, format="json")
    again = rest.post(REGISTER, {"Company": "Acme", **LEAD}, format="json")  # the same call

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Record.objects.count() == 1
    receipt = ExecuteReceipt.objects.get()
    assert receipt.status == 201
    assert receipt.body == first.json()


def test_the_same_transaction_id_with_another_record_is_422_and_changes_nothing(
    rest, register_lead
):
    """It answered 201 with the first record, and the second was never written (an outside
    probe); a flow's Idempotency-Key reused so is 422 too."""
    assert rest.post(REGISTER, LEAD, format="json").status_code == 201

    again = rest.post(REGISTER, {**LEAD, "Company": "Other"}, format="json")

    assert again.status_code == 422
    problem = again.json()
    assert problem["type"] == "urn:flowsite:problem:idempotency-key-reused"
    assert "different RecordID or different values" in problem["detail"]
    assert list(Record.objects.values_list("data__Company", flat=True)) == ["Acme"]


def test_another_account_with_the_same_transaction_id_is_another_transaction(
    rest, register_lead, key_client, integration, surface_role, surface_on
):
    surface_role.members.add(integration)
    surface_on.integration_accounts.add(integration)

    assert rest.post(REGISTER, LEAD, format="json").status_code == 201
    assert key_client(integration).post(REGISTER, LEAD, format="json").status_code == 201

    assert Record.objects.count() == 2


def test_a_transaction_id_reused_for_another_operation_is_409(rest, register_lead, leads_app, lead):
    operation(leads_app, lead, "Register Again", "create")
    assert rest.post(REGISTER, LEAD, format="json").status_code == 201

    response = rest.post(
        "/api/rest/execute/Lead%20Registration/Register%20Again", LEAD, format="json"
    )

    assert response.status_code == 409
    assert Record.objects.count() == 1


def test_an_invalid_call_leaves_no_receipt_so_it_can_be_corrected(rest, register_lead):
    assert rest.post(REGISTER, {**LEAD, "Company": None}, format="json").status_code == 400

    assert rest.post(REGISTER, LEAD, format="json").status_code == 201


def test_a_transaction_id_that_is_not_text_is_400(rest, register_lead):
    response = rest.post(REGISTER, {**LEAD, "ExternalTransactionId": 42}, format="json")

    assert response.status_code == 400


def test_an_idempotency_key_header_is_the_same_as_an_external_transaction_id(rest, register_lead):
    """README's table promises the header too (found missing by an outside probe)."""
    lead = {"RecordID": None, "Company": "Stark Industries"}
    first = rest.post(REGISTER, lead, format="json", HTTP_IDEMPOTENCY_KEY="crm-order-77")
    again = rest.post(REGISTER, lead, format="json", HTTP_IDEMPOTENCY_KEY="crm-order-77")
    same = rest.post(
        REGISTER,
        {**lead, "ExternalTransactionId": "crm-order-77"},
        format="json",
        HTTP_IDEMPOTENCY_KEY="crm-order-77",
    )

    assert (first.status_code, again.status_code, same.status_code) == (201, 201, 201)
    assert again.json() == same.json() == first.json()
    assert again["Idempotent-Replayed"] == same["Idempotent-Replayed"] == "true"
    assert Record.objects.count() == 1
    assert ExecuteReceipt.objects.get().external_transaction_id == "crm-order-77"


def test_a_header_and_a_transaction_id_that_differ_are_400(rest, register_lead):
    response = rest.post(REGISTER, LEAD, format="json", HTTP_IDEMPOTENCY_KEY="another-key")

    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "#/ExternalTransactionId"
    assert not Record.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_calls_with_one_transaction_id_create_one_record(
    restuser, surface_on, register_lead
):
    key = create_api_key(owner=restuser).plaintext
    barrier = threading.Barrier(20)
    answers: list = []
    failures: list = []

    def call():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        try:
            barrier.wait(timeout=30)
            response = client.post(REGISTER, LEAD, format="json")
            answers.append((response.status_code, response.json()))
        except BaseException as exc:
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not failures, failures
    assert len(answers) == 20
    assert {status for status, _ in answers} == {201}, answers
    assert len({body["RecordID"] for _, body in answers}) == 1
    assert Record.objects.count() == 1
    assert ExecuteReceipt.objects.count() == 1
    assert connection.vendor in ("sqlite", "postgresql")
