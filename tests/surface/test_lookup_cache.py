"""The surface's switches and views are remembered 0.5 s (apps/surface/lookup_cache.py):
a change made by any means is seen within a second, one made through the ORM at once, and
records are never remembered."""

import time

import pytest
from django.db import connection

from apps.accounts import key_cache
from apps.records import services as records
from apps.surface import lookup_cache
from apps.surface.models import SurfaceConfiguration, View

URL = "/api/rest/query/Lead%20Registration/All%20Leads"


@pytest.fixture
def remembered(monkeypatch):
    for module in (key_cache, lookup_cache):
        monkeypatch.setattr(module.memory, "seconds", module.SECONDS)
        module.clear()
    yield
    for module in (key_cache, lookup_cache):
        module.clear()


def wait_out_the_memory():
    time.sleep(lookup_cache.SECONDS + 0.1)


def test_a_warm_query_reads_only_its_page(
    rest, all_leads, lead, remembered, django_assert_num_queries
):
    records.create_record(record_type=lead, data={"Company": "Acme"})
    assert rest.get(URL).status_code == 200
    with django_assert_num_queries(1):  # the key, surface and view are remembered
        response = rest.get(URL)
    assert [document["Company"] for document in response.json()] == ["Acme"]


def test_a_record_written_is_in_the_next_query(rest, all_leads, lead, remembered):
    assert rest.get(URL).json() == []
    records.create_record(record_type=lead, data={"Company": "Written just now"})
    assert [d["Company"] for d in rest.get(URL).json()] == ["Written just now"]


def test_changes_by_update_are_seen_within_a_second(rest, all_leads, restuser, remembered):
    assert rest.get(URL).status_code == 200
    View.objects.filter(pk=all_leads.pk).update(rest_query=False)  # no signal
    wait_out_the_memory()
    assert rest.get(URL).status_code == 404

    View.objects.filter(pk=all_leads.pk).update(rest_query=True)
    wait_out_the_memory()
    assert rest.get(URL).status_code == 200
    SurfaceConfiguration.objects.filter(pk=SurfaceConfiguration.SINGLETON_PK).update(query=False)
    wait_out_the_memory()
    assert rest.get(URL).json()["type"].endswith(":surface-disabled")


def test_changes_through_the_orm_are_seen_at_once(rest, all_leads, lead, restuser, remembered):
    records.create_record(record_type=lead, data={"Company": "Acme", "Rating": "Hot"})
    assert list(rest.get(URL).json()[0])[6:] == [field.name for field in lead.fields.all()]
    configuration = SurfaceConfiguration.load()
    configuration.integration_accounts.remove(restuser)
    assert rest.get(URL).json()["type"].endswith(":integration-account-not-allowed")

    configuration.integration_accounts.add(restuser)
    assert rest.get(URL).status_code == 200
    all_leads.fields = ["Company"]
    all_leads.save()
    assert list(rest.get(URL).json()[0])[6:] == ["Company"]
    all_leads.rest_query = False
    all_leads.save()
    assert rest.get(URL).status_code == 404


def test_an_operation_switched_off_by_update_is_refused_within_a_second(
    rest, register_lead, remembered
):
    url = "/api/rest/execute/Lead%20Registration/Register%20Lead"
    payload = {"RecordID": None, "Company": "Acme"}
    assert rest.post(url, payload, format="json").status_code == 201
    type(register_lead).objects.filter(pk=register_lead.pk).update(rest_execute=False)
    wait_out_the_memory()
    assert rest.post(url, payload, format="json").status_code == 404


def test_a_warm_execute_create_reads_and_writes_only_its_record(
    rest, register_lead, remembered, django_assert_num_queries
):
    url = "/api/rest/execute/Lead%20Registration/Register%20Lead"
    assert rest.post(url, {"RecordID": None, "Company": "Warm-up"}, format="json").status_code
    # The receipt looked up, inserted and given the answer; the counter advanced (which
    # locks it) and the record inserted: in one statement on PostgreSQL, two elsewhere.
    # Nothing else is read. Plus the savepoint of Execute()'s atomic block (the test's
    # transaction makes it a savepoint); the record's write adds none of its own. On
    # PostgreSQL, one round trip locks the records table for writing and checks the field
    # types (records.locks: a change of type cannot race the write).
    postgresql = connection.vendor == "postgresql"
    checked = ["LOCK"] if postgresql else []
    stamped = ["WITH"] if postgresql else ["UPDATE", "INSERT"]
    with django_assert_num_queries(3 + len(checked) + len(stamped) + 2) as captured:
        response = rest.post(
            url,
            {"RecordID": None, "ExternalTransactionId": "t-1", "Company": "Acme"},
            format="json",
        )
    assert response.status_code == 201
    statements = [query["sql"].split()[0] for query in captured.captured_queries]
    assert [s for s in statements if s not in ("SAVEPOINT", "RELEASE")] == [
        "SELECT",
        "INSERT",
        *checked,
        *stamped,
        "UPDATE",
    ]
