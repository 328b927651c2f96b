import random

import pytest

from apps.records import services
from apps.records.models import Record
from apps.records.selectors import InvalidQuery, query_records, record_document


@pytest.fixture
def create(lead_type):
    def make(company: str, **values):
        return services.create_record(record_type=lead_type, data={"Company": company, **values})

    return make


@pytest.fixture
def leads(create):
    create(
        "Acme",
        Rating="Hot",
        Tags=["Retail", "B2B"],
        Amount=9,
        Employees=9,
        Active=True,
        Due="2024-05-09",
        Meeting="2024-05-01T10:00:00+02:00",  # 08:00 UTC
        Email="sales@acme.example",
    )
    create(
        "Bolt",
        Rating="Warm",
        Tags=["B2B"],
        Amount=10.5,
        Employees=10,
        Active=False,
        Due="2024-05-10",
        Meeting="2024-05-01T09:00:00Z",
    )
    create("Cog", Rating="Cold", Amount=100, Employees=100, Due="2024-12-01", Active=None)
    create("Dent")  # every optional field empty, Active by default


def companies(lead_type, **query) -> list[str]:
    return [document["Company"] for document in query_records(lead_type, **query).documents]


def matching(lead_type, *filters) -> set[str]:
    return set(companies(lead_type, filters=list(filters)))


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (("Company", "eq", "Bolt"), {"Bolt"}),
        (("Company", "ne", "Bolt"), {"Acme", "Cog", "Dent"}),
        (("Rating", "ne", "Hot"), {"Bolt", "Cog", "Dent"}),  # ne matches empty values too
        (("Company", "contains", "o"), {"Bolt", "Cog"}),
        (("Company", "contains", "AC"), {"Acme"}),  # case-insensitive
        (("Company", "lt", "Bolt"), {"Acme"}),
        (("Rating", "eq", {"Selection": "Warm"}), {"Bolt"}),
        (("Rating", "in", ["Hot", "Cold"]), {"Acme", "Cog"}),
        (("Rating", "in", "Hot,Warm"), {"Acme", "Bolt"}),
        (("Rating", "isnull", True), {"Dent"}),
        (("Rating", "isnull", "false"), {"Acme", "Bolt", "Cog"}),
        (("Tags", "eq", "B2B"), {"Acme", "Bolt"}),
        (("Tags", "contains", "Retail"), {"Acme"}),
        (("Tags", "ne", "Retail"), {"Bolt", "Cog", "Dent"}),
        (("Tags", "in", ["Retail", "Partner"]), {"Acme"}),
        (("Tags", "isnull", True), {"Cog", "Dent"}),
        (("Amount", "lt", 10), {"Acme"}),  # 9 < 10 numerically, not as text
        (("Amount", "gt", "9"), {"Bolt", "Cog"}),
        (("Amount", "gte", 10.5), {"Bolt", "Cog"}),
        (("Amount", "lte", 100), {"Acme", "Bolt", "Cog"}),
        (("Amount", "eq", 100.0), {"Cog"}),
        (("Employees", "lt", 10), {"Acme"}),
        (("Employees", "gte", "10"), {"Bolt", "Cog"}),
        (("Employees", "eq", 9), {"Acme"}),
        (("Employees", "in", [9, 100]), {"Acme", "Cog"}),
        (("Active", "eq", True), {"Acme", "Dent"}),
        (("Active", "eq", "false"), {"Bolt"}),
        (("Active", "isnull", True), {"Cog"}),
        (("Due", "lt", "2024-05-10"), {"Acme"}),
        (("Due", "gte", "2024-05-10"), {"Bolt", "Cog"}),
        (("Due", "eq", "2024-12-01"), {"Cog"}),
        (("Meeting", "lt", "2024-05-01T09:00:00Z"), {"Acme"}),  # 10:00+02:00 is earlier
        (("Meeting", "gte", "2024-05-01T11:00:00+02:00"), {"Bolt"}),
        (("Meeting", "eq", "2024-05-01T08:00:00Z"), {"Acme"}),
        (("Email", "eq", "sales@acme.example"), {"Acme"}),
        (("Email", "isnull", True), {"Bolt", "Cog", "Dent"}),
    ],
)
def test_filters(lead_type, leads, condition, expected):
    assert matching(lead_type, condition) == expected


@pytest.mark.parametrize("text", ["ärzte", "ÄRZTE", "Ärzte", "ßtraße", "ΣΟΦΊΑ", "σοφία"])
def test_contains_ignores_the_case_of_every_letter_not_only_ascii(lead_type, create, text):
    """On SQLite, whose LIKE folds ASCII letters only, "ÄRZTE" did not contain "ärzte"."""
    create("Ärzte ohne Grenzen")
    create("ßtraße und Σοφία")

    found = matching(lead_type, ("Company", "contains", text))

    assert found == ({"Ärzte ohne Grenzen"} if "rzte" in text.lower() else {"ßtraße und Σοφία"})


def test_an_in_filter_takes_as_many_values_as_it_may(lead_type, leads):
    """SQLite refused ~1,000 terms as too deep an expression: answered as the database
    being unavailable (503), found by an outside probe. 500 values work on both."""
    values = ["Acme", *(f"Other {number}" for number in range(499))]
    assert matching(lead_type, ("Company", "in", values)) == {"Acme"}


def test_filters_combine_with_and(lead_type, leads):
    assert matching(lead_type, ("Amount", "gt", 9), ("Rating", "eq", "Cold")) == {"Cog"}


def test_json_fields_compare_as_json(lead_type, create):
    create("J1", Extra={"tier": 1})
    create("J2", Extra=[1, 2])
    create("J3")
    assert matching(lead_type, ("Extra", "eq", {"tier": 1})) == {"J1"}
    assert matching(lead_type, ("Extra", "isnull", True)) == {"J3"}


def test_system_fields_can_be_filtered(lead_type, leads, owner):
    first = Record.objects.get(pk=query_records(lead_type).documents[0]["RecordID"])
    assert matching(lead_type, ("RecordID", "eq", first.pk)) == {"Acme"}
    assert matching(lead_type, ("SubmissionId", "gt", 2)) == {"Cog", "Dent"}
    assert matching(lead_type, ("CreatedOn", "lte", "2999-01-01T00:00:00Z")) == {
        "Acme",
        "Bolt",
        "Cog",
        "Dent",
    }
    services.update_record(record=first, data={"Amount": 1}, user=owner)
    assert matching(lead_type, ("ModifiedBy", "eq", "owner")) == {"Acme"}
    assert matching(lead_type, ("CreatedBy", "isnull", True)) == {"Acme", "Bolt", "Cog", "Dent"}


@pytest.mark.parametrize(
    ("ordering", "expected"),
    [
        ([], ["Acme", "Bolt", "Cog", "Dent"]),
        ([("Amount", "desc")], ["Dent", "Cog", "Bolt", "Acme"]),  # empty values first
        ([("Amount", "asc")], ["Acme", "Bolt", "Cog", "Dent"]),  # and last going up
        ([("Employees", "desc")], ["Dent", "Cog", "Bolt", "Acme"]),
        ([("Due", "desc")], ["Dent", "Cog", "Bolt", "Acme"]),
        ([("Meeting", "asc")], ["Acme", "Bolt", "Cog", "Dent"]),
        ([("Rating", "asc"), ("Company", "desc")], ["Cog", "Acme", "Bolt", "Dent"]),
        ([("RecordID", "desc")], ["Dent", "Cog", "Bolt", "Acme"]),
    ],
)
def test_ordering(lead_type, leads, ordering, expected):
    assert companies(lead_type, ordering=ordering) == expected


def page_through(lead_type, *, between=None, **query) -> list[int]:
    seen, cursor, pages = [], None, 0
    while True:
        page = query_records(lead_type, after=cursor, **query)
        seen += [document["RecordID"] for document in page.documents]
        pages += 1
        if page.next_cursor is None:
            return seen
        if between:
            between()
        cursor = page.next_cursor


def test_keyset_pages_return_each_row_once_while_rows_are_inserted(lead_type, create):
    for number in range(250):
        create(f"Lead {number}")
    before = {d["RecordID"] for d in query_records(lead_type, limit=1000).documents}
    inserted = []
    seen = page_through(
        lead_type, limit=100, between=lambda: inserted.append(create("Inserted").pk)
    )
    assert len(seen) == len(set(seen))
    assert before <= set(seen)
    # Rows inserted while paging by RecordID come after the cursor, so they show up too.
    assert set(inserted) <= set(seen)


@pytest.mark.parametrize(
    "ordering",
    [
        [("Amount", "asc")],
        [("Amount", "desc")],
        [("Rating", "asc"), ("Employees", "desc")],
        [("Due", "desc"), ("Active", "asc")],
        [("Meeting", "asc")],
    ],
)
def test_keyset_pages_with_ties_and_empty_values_return_each_row_once(lead_type, create, ordering):
    rng = random.Random(4)  # noqa: S311 - test data
    for number in range(60):
        create(
            f"Lead {number}",
            Amount=rng.choice([None, 1, 2.5, 10]),
            Employees=rng.choice([None, 3, 30]),
            Rating=rng.choice([None, "Hot", "Cold"]),
            Due=rng.choice([None, "2024-01-02", "2024-11-30"]),
            Active=rng.choice([None, True, False]),
            Meeting=rng.choice([None, "2024-05-01T10:00:00+02:00", "2024-05-01T09:00:00Z"]),
        )
    expected = [d["RecordID"] for d in query_records(lead_type, ordering=ordering).documents]
    seen = page_through(lead_type, ordering=ordering, limit=7)
    assert seen == expected
    assert len(set(seen)) == 60


def test_since_returns_records_created_or_updated_after_a_submission_id(lead_type, leads, owner):
    page = query_records(lead_type, since=0)
    assert [document["SubmissionId"] for document in page.documents] == [1, 2, 3, 4]
    assert page.last_submission_id == 4

    acme = Record.objects.get(pk=page.documents[0]["RecordID"])
    services.update_record(record=acme, data={"Rating": "Cold"}, user=owner)
    page = query_records(lead_type, since=4)
    assert [(d["Company"], d["SubmissionId"]) for d in page.documents] == [("Acme", 5)]
    assert page.last_submission_id == 5
    assert query_records(lead_type, since=5).last_submission_id == 5


def test_since_pages_in_submission_order_and_ignores_ordering(lead_type, create):
    for number in range(25):
        create(f"Lead {number}")
    page = query_records(lead_type, since=10, limit=10, ordering=[("Company", "desc")])
    assert [document["SubmissionId"] for document in page.documents] == list(range(11, 21))
    page = query_records(lead_type, since=10, limit=10, after=page.next_cursor)
    assert [document["SubmissionId"] for document in page.documents] == list(range(21, 26))
    assert page.next_cursor is None


@pytest.mark.parametrize(
    ("query", "where"),
    [
        ({"filters": [("Colour", "eq", "red")]}, "filters[0]"),
        ({"filters": [("Company", "like", "A")]}, "filters[0]"),
        ({"filters": [("Amount", "eq", "many")]}, "filters[0]"),
        ({"filters": [("Amount", "contains", "9")]}, "filters[0]"),
        ({"filters": [("Active", "lt", True)]}, "filters[0]"),
        ({"filters": [("Rating", "eq", "Tepid")]}, "filters[0]"),
        ({"filters": [("Company",)]}, "filters[0]"),
        ({"ordering": [("Tags", "asc")]}, "ordering[0]"),
        ({"ordering": [("Company", "up")]}, "ordering[0]"),
        ({"after": "not-a-cursor"}, "after"),
        ({"limit": 0}, "limit"),
        ({"limit": 5000}, "limit"),
        ({"since": -1}, "since"),
        ({"filters": [("Company", "in", [f"C{n}" for n in range(501)])]}, "filters[0]"),
        ({"filters": [("Company", "ne", f"C{n}") for n in range(101)]}, "filters"),
    ],
)
def test_bad_queries_say_what_is_wrong(lead_type, query, where):
    with pytest.raises(InvalidQuery) as raised:
        query_records(lead_type, **query)
    assert where in raised.value.errors


def test_a_cursor_of_another_ordering_is_refused(lead_type, create):
    for number in range(3):
        create(f"Lead {number}")
    cursor = query_records(lead_type, limit=1).next_cursor
    with pytest.raises(InvalidQuery, match="Not a cursor of this query"):
        query_records(lead_type, limit=1, after=cursor, ordering=[("Company", "asc")])


def test_the_record_document_has_the_system_fields_then_the_values(lead_type, lead_fields, owner):
    record = services.create_record(
        record_type=lead_type,
        data={"Company": "Acme", "Rating": "Hot", "Tags": ["B2B"], "Amount": 9},
        user=owner,
    )
    document = record_document(record, lead_fields)
    assert list(document)[:6] == [
        "RecordID",
        "CreatedBy",
        "CreatedOn",
        "ModifiedBy",
        "ModifiedOn",
        "SubmissionId",
    ]
    assert document["RecordID"] == record.pk
    assert document["CreatedBy"] == document["ModifiedBy"] == "owner"
    assert document["CreatedOn"].endswith("Z")
    assert document["SubmissionId"] == 1
    assert document["Rating"] == {"Selection": "Hot"}
    assert document["Tags"] == [{"Selection": "B2B"}]
    assert document["Amount"] == 9
    assert document["Due"] is None
    assert document["Active"] is True


def test_a_page_takes_a_fixed_number_of_queries(lead_type, leads, django_assert_num_queries):
    with django_assert_num_queries(2):  # the fields, then the page
        page = query_records(lead_type)
    assert len(page.documents) == 4
    fields = list(lead_type.fields.all())
    with django_assert_num_queries(1):  # the page alone when the fields are known
        query_records(lead_type, fields=fields)
