"""A page's documents are written by the database (apps/records/documents_sql.py): they
must be exactly what record_document builds in Python, for every field type, odd names and
values, on SQLite and on PostgreSQL (CI runs both)."""

import json
from datetime import UTC, datetime

import pytest

from apps.records import services
from apps.records.models import Record, RecordField, RecordType
from apps.records.selectors import query_records, record_document

Type = RecordField.Type


@pytest.fixture
def odd_type(application, lead_type) -> RecordType:
    """The lead type plus fields whose names need quoting in SQL, JSON and JSON paths."""
    position = lead_type.fields.count()
    for offset, name in enumerate(("Lead Source", 'It\'s "quoted"', "Ünïcödé ☃", "a.b")):
        RecordField.objects.create(
            record_type=lead_type,
            position=position + offset,
            name=name,
            type=Type.CHOICE if offset == 0 else Type.TEXT,
            choices=["Web", "Partner"] if offset == 0 else [],
        )
    return lead_type


VALUES = [
    {"Company": "Acme"},  # every optional field empty
    {
        "Company": 'Quote " backslash \\ newline \n tab \t <b>html</b> 😀',
        "Rating": "Hot",
        "Tags": ["Partner", "B2B", "Retail"],  # their order kept
        "Amount": 10.5,
        "Employees": 12345678901,
        "Active": False,
        "Due": "2024-02-29",
        "Meeting": "2024-05-01T10:00:00.123456+02:00",
        "Email": "ada@example.com",
        "Website": "https://example.com/?a=1&b=2",
        "Notes": "Zeilen\nüber\nZeilen",
        "Extra": {"nested": [1, 2.25, None, True, {"k": "v"}], "empty": {}},
        "Lead Source": "Web",
        'It\'s "quoted"': "yes",
        "Ünïcödé ☃": "❄",
        "a.b": "dotted",
    },
    {"Company": "Empty lists", "Tags": [], "Extra": [], "Amount": 0, "Active": True},
    {"Company": "Scalars", "Extra": "just text", "Amount": -0.001, "Employees": 0},
]


@pytest.mark.parametrize("microsecond", [0, 1, 123_999, 999_999])
def test_page_documents_equal_record_document(odd_type, owner, microsecond):
    fields = list(odd_type.fields.all())
    created = [
        services.create_record(record_type=odd_type, data=values, user=owner) for values in VALUES
    ]
    # Timestamps with and without fractions of a second (stored differently on SQLite).
    stamp = datetime(2024, 3, 4, 5, 6, 7, microsecond, tzinfo=UTC)
    Record.objects.filter(pk=created[0].pk).update(created_at=stamp, modified_at=stamp)
    Record.objects.filter(pk=created[1].pk).update(created_by=None)

    page = query_records(odd_type, fields=fields)

    expected = [record_document(Record.objects.get(pk=r.pk), fields) for r in created]
    assert json.loads(page.text) == expected
    assert page.documents == expected
    assert [list(document) for document in page.documents] == [list(d) for d in expected]
    assert page.documents[0]["CreatedOn"] == f"2024-03-04T05:06:07.{microsecond // 1000:03d}Z"


def test_shown_fields_choose_and_order_the_document(lead_type, lead_fields, owner):
    services.create_record(
        record_type=lead_type, data={"Company": "Acme", "Rating": "Warm"}, user=owner
    )
    by_name = {field.name: field for field in lead_fields}
    page = query_records(lead_type, shown=[by_name["Rating"], by_name["Company"]])
    assert list(page.documents[0])[6:] == ["Rating", "Company"]
    assert page.documents[0]["Rating"] == {"Selection": "Warm"}


def test_a_page_of_nothing_is_an_empty_array(lead_type):
    page = query_records(lead_type)
    assert page.text == "[]"
    assert page.next_cursor is None
