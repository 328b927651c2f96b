"""A view ordered by a field gets an expression index on PostgreSQL, which its pages use."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.records.indexes import ensure_ordering_index, ordering_index_sql
from apps.records.selectors import query_records, record_type_document
from apps.records.services import create_record, save_record_type
from apps.surface import tasks
from apps.surface.models import View
from apps.surface.tasks import index_view_ordering
from tests.conftest import postgresql_only
from tests.records.conftest import record_type_form


def index_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [name])
        return cursor.fetchone() is not None


@pytest.fixture
def by_amount(lead_type, monkeypatch) -> View:
    """A view ordered by Amount, its index built; indexes queued later are built at once
    (a worker's job), so a test sees what the worker would leave."""
    monkeypatch.setattr(tasks.index_view_ordering, "delay", tasks.index_view_ordering)
    return View.objects.create(
        application=lead_type.application,
        record_type=lead_type,
        name="By amount",
        ordering=[{"field": "Amount", "direction": "asc"}],
    )


def amount_as_text_in_the_admin(client, owner, record_type) -> None:
    """Post the record type's page with Amount's type changed to text, as a builder would."""
    data = record_type_form(record_type, changed={"Amount": {"type": "text"}})
    client.force_login(owner)
    response = client.post(f"/admin/records/recordtype/{record_type.pk}/change/", data)
    assert response.status_code == 302, response.context["errors"]


def test_sqlite_and_plain_orderings_need_no_index(lead_type):
    assert ordering_index_sql(lead_type, [("RecordID", "asc")]) is None
    assert ordering_index_sql(lead_type, [("Due", "asc")]) is None  # not indexable
    if connection.vendor == "sqlite":
        assert ordering_index_sql(lead_type, [("Company", "asc")]) is None


def _plan_of_page(record_type, ordering) -> str:
    with CaptureQueriesContext(connection) as queries:
        query_records(record_type, ordering=ordering, limit=10)
    page_sql = next(q["sql"] for q in queries if 'FROM "records_record"' in q["sql"])
    with connection.cursor() as cursor:
        # Few rows: make the planner show whether the index *can* serve the order.
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("SET enable_sort = off")
        cursor.execute(f"EXPLAIN {page_sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
        cursor.execute("RESET enable_sort")
    return plan


@postgresql_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "ordering",
    [[("Company", "asc")], [("Amount", "desc")], [("Rating", "asc"), ("Employees", "desc")]],
)
def test_a_pages_ordering_is_served_by_its_index(lead_type, ordering):
    for index in range(30):
        create_record(
            record_type=lead_type,
            data={"Company": f"Co {index:02}", "Amount": index * 1.5, "Rating": "Hot"},
        )
    name = ensure_ordering_index(lead_type, ordering)
    assert name is not None
    assert ensure_ordering_index(lead_type, ordering) == name  # already there: no-op
    plan = _plan_of_page(lead_type, ordering)
    assert name in plan, plan
    assert "Sort" not in plan, plan


@postgresql_only
def test_saving_an_ordered_view_queues_its_index(lead_type, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        View.objects.create(
            application=lead_type.application,
            record_type=lead_type,
            name="By company",
            ordering=[{"field": "Company", "direction": "asc"}],
        )
        View.objects.create(application=lead_type.application, record_type=lead_type, name="By id")
    assert len(callbacks) == 1  # the one with an ordering


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_the_task_builds_the_views_index(lead_type):
    view = View.objects.create(
        application=lead_type.application,
        record_type=lead_type,
        name="By company",
        ordering=[{"field": "Company", "direction": "asc"}],
    )
    name = index_view_ordering(view.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [name])
        assert cursor.fetchone() == (1,)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_fields_new_type_drops_the_indexes_that_cast_its_old_one(lead_type):
    """A number field's ordering index casts its values to numbers: once the field became
    text, every write of a non-numeric value was a 500 (found by an outside probe)."""
    name = ensure_ordering_index(lead_type, [("Amount", "asc")])
    document = record_type_document(lead_type)
    for field in document["fields"]:
        if field["name"] == "Amount":
            field["type"] = "text"

    save_record_type(document=document, record_type=lead_type)

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [name])
        assert cursor.fetchone() is None
    create_record(record_type=lead_type, data={"Company": "Acme", "Amount": "about ten"})


@postgresql_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("way", ["api", "admin"])
def test_a_fields_new_type_gives_its_views_an_index_of_the_new_type(
    client, owner, lead_type, by_amount, way
):
    """The admin's field editor left the old index in place (every later text write of the
    field a 500), and neither way built the view's index again."""
    before = ensure_ordering_index(lead_type, [("Amount", "asc")])
    assert index_exists(before)

    if way == "admin":
        amount_as_text_in_the_admin(client, owner, lead_type)
    else:
        document = record_type_document(lead_type)
        for field in document["fields"]:
            if field["name"] == "Amount":
                field["type"] = "text"
        save_record_type(document=document, record_type=lead_type)

    assert lead_type.fields.get(name="Amount").type == "text"
    assert not index_exists(before)
    after = ordering_index_sql(lead_type, [("Amount", "asc")])[0]
    assert after != before
    assert index_exists(after)
    create_record(record_type=lead_type, data={"Company": "Acme", "Amount": "about ten"})
