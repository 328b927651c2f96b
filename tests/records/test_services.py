import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.records import services
from apps.records.models import Record, RecordField, RecordType, SubmissionCounter
from apps.records.selectors import record_type_document
from apps.records.validation import RecordInvalid
from tests.conftest import postgresql_only


def test_creating_a_record_validates_applies_defaults_and_records_who(lead_type, owner):
    record = services.create_record(
        record_type=lead_type, data={"Company": "Acme", "Rating": {"Selection": "Hot"}}, user=owner
    )
    record.refresh_from_db()
    assert record.data["Company"] == "Acme"
    assert record.data["Rating"] == "Hot"
    assert record.data["Active"] is True
    assert record.created_by == owner
    assert record.modified_by == owner
    assert record.submission_id == 1


def test_an_invalid_record_is_not_saved_and_uses_no_submission_id(lead_type):
    with pytest.raises(RecordInvalid) as raised:
        services.create_record(record_type=lead_type, data={"Rating": "Tepid"})
    assert set(raised.value.errors) == {"Company", "Rating"}
    assert not Record.objects.exists()
    assert services.create_record(record_type=lead_type, data={"Company": "A"}).submission_id == 1


def test_submission_ids_grow_on_every_create_and_update(lead_type, owner, member):
    first = services.create_record(record_type=lead_type, data={"Company": "A"}, user=owner)
    second = services.create_record(record_type=lead_type, data={"Company": "B"}, user=owner)
    assert (first.submission_id, second.submission_id) == (1, 2)

    services.update_record(record=first, data={"Amount": 5}, user=member)
    first.refresh_from_db()
    assert first.submission_id == 3
    assert first.data["Company"] == "A"  # a partial update keeps the other values
    assert first.data["Amount"] == 5
    assert first.modified_by == member
    assert first.created_by == owner

    services.update_record(record=first, data={}, user=member)  # even with no change
    first.refresh_from_db()
    assert first.submission_id == 4


def test_submission_ids_count_per_record_type(lead_type, application):
    other = RecordType.objects.create(application=application, name="Contact")
    services.create_record(record_type=lead_type, data={"Company": "A"})
    assert services.create_record(record_type=other, data={}).submission_id == 1


def test_a_new_counter_starts_after_ids_already_used(lead_type):
    Record.objects.create(record_type=lead_type, data={"Company": "old"}, submission_id=41)
    assert services.create_record(record_type=lead_type, data={"Company": "A"}).submission_id == 42
    assert SubmissionCounter.objects.get(record_type=lead_type).last_value == 42


def test_an_update_keeps_values_under_names_its_fields_do_not_have(lead_type):
    """A field deleted through the admin or the API takes its values with it
    (test_field_changes); an update keeps what it does not know, such as values a rename
    moved after its fields were read."""
    record = services.create_record(record_type=lead_type, data={"Company": "A", "Notes": "n"})
    lead_type.fields.filter(name="Notes").delete()
    services.update_record(record=record, data={"Company": "B"})
    record.refresh_from_db()
    assert (record.data["Company"], record.data["Notes"]) == ("B", "n")


def test_an_invalid_update_changes_nothing(lead_type):
    record = services.create_record(record_type=lead_type, data={"Company": "A"})
    with pytest.raises(RecordInvalid):
        services.update_record(record=record, data={"Company": None, "Employees": "many"})
    record.refresh_from_db()
    assert (record.data["Company"], record.submission_id) == ("A", 1)


def test_upsert_creates_then_updates_the_record_with_the_key(lead_type, owner):
    record, created = services.upsert_record(
        record_type=lead_type, key_field="Email", data={"Email": "a@x.example", "Company": "A"}
    )
    assert created
    again, created = services.upsert_record(
        record_type=lead_type,
        key_field="Email",
        data={"Email": "a@x.example", "Rating": "Warm"},
        user=owner,
    )
    assert not created
    assert again.pk == record.pk
    again.refresh_from_db()
    assert again.data["Company"] == "A"
    assert again.data["Rating"] == "Warm"
    assert again.submission_id == 2
    assert Record.objects.count() == 1


def test_upsert_matches_numbers_by_value(lead_type):
    services.create_record(record_type=lead_type, data={"Company": "A", "Employees": 7})
    record, created = services.upsert_record(
        record_type=lead_type, key_field="Employees", data={"Employees": 7.0, "Company": "B"}
    )
    assert not created
    assert record.data["Company"] == "B"


def test_upsert_that_creates_needs_the_required_fields(lead_type):
    with pytest.raises(RecordInvalid) as raised:
        services.upsert_record(record_type=lead_type, key_field="Email", data={"Email": "a@x.io"})
    assert raised.value.errors == {"Company": "This field is required."}


def test_upsert_needs_a_key_field_and_value_and_a_unique_match(lead_type):
    with pytest.raises(RecordInvalid, match="cannot be the key"):
        services.upsert_record(record_type=lead_type, key_field="Nope", data={})
    with pytest.raises(RecordInvalid, match="required"):
        services.upsert_record(record_type=lead_type, key_field="Email", data={"Company": "A"})
    for _ in range(2):
        services.create_record(record_type=lead_type, data={"Company": "Twin"})
    with pytest.raises(RecordInvalid, match="More than one record"):
        services.upsert_record(record_type=lead_type, key_field="Company", data={"Company": "Twin"})


def test_deleting_a_record(lead_type):
    record = services.create_record(record_type=lead_type, data={"Company": "A"})
    services.delete_record(record=record)
    assert not Record.objects.exists()


def test_a_record_type_with_records_cannot_be_deleted_until_emptied(lead_type):
    from django.db.models import ProtectedError

    services.create_record(record_type=lead_type, data={"Company": "A"})
    with pytest.raises(ProtectedError):
        lead_type.delete()
    assert services.empty_record_type(record_type=lead_type) == 1
    lead_type.delete()


def test_a_record_type_is_created_from_its_document(application):
    document = {
        "name": "Lead",
        "_integrationId": str(application.pk),
        "fields": [
            {"name": "Company", "type": "text", "required": True},
            {"name": "Rating", "type": "choice", "choices": ["Hot", "Warm", "Cold"]},
            {"name": "Tags", "type": "multi-choice", "choices": ["A", "B"], "default": ["A"]},
            {"name": "Notes", "type": "long text"},
        ],
    }
    record_type = services.save_record_type(document=document)
    shown = record_type_document(record_type)
    assert shown["name"] == "Lead"
    assert shown["_integrationId"] == str(application.pk)
    assert shown["fields"] == [
        {"name": "Company", "type": "text", "required": True},
        {"name": "Rating", "type": "choice", "required": False, "choices": ["Hot", "Warm", "Cold"]},
        {
            "name": "Tags",
            "type": "multi-choice",
            "required": False,
            "choices": ["A", "B"],
            "default": ["A"],
        },
        {"name": "Notes", "type": "long text", "required": False},
    ]


def test_a_record_type_document_replaces_the_fields_by_name(lead_type):
    field = lead_type.fields.get(name="Rating")
    services.save_record_type(
        record_type=lead_type,
        document={"fields": [{"name": "Rating", "type": "choice", "choices": ["Hot", "Cold"]}]},
    )
    assert list(lead_type.fields.values_list("pk", "name", "choices")) == [
        (field.pk, "Rating", ["Hot", "Cold"])
    ]
    assert lead_type.name == "Lead"


def test_a_bad_record_type_document_lists_every_problem(application):
    document = {
        "name": "Le/ad",
        "_integrationId": "999999",
        "fields": [
            {"name": "RecordID", "type": "text"},
            {"name": "Rating", "type": "choice"},
            {"name": "Kind", "type": "colour"},
            {"name": "Kind", "type": "text"},
            {"name": "Count", "type": "integer", "default": "many"},
        ],
    }
    with pytest.raises(ValidationError) as raised:
        services.save_record_type(document=document)
    errors = raised.value.message_dict
    assert set(errors) == {
        "name",
        "_integrationId",
        "fields[0].name",
        "fields[1].choices",
        "fields[2].type",
        "fields[3].name",
        "fields[4].default",
    }
    assert "system field" in errors["fields[0].name"][0]
    assert "List the allowed values" in errors["fields[1].choices"][0]
    assert "two fields named 'Kind'" in errors["fields[3].name"][0]
    assert "Expected an integer" in errors["fields[4].default"][0]
    assert not RecordType.objects.exists()


def test_a_field_name_cannot_be_a_system_field_in_any_case(lead_type):
    field = RecordField(record_type=lead_type, name="submissionid", type="text")
    with pytest.raises(ValidationError, match="system field"):
        field.full_clean()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("processId", "answers use"),  # Execute()'s answer puts the run's id there
        ("_recordTypeId", "answers use"),  # the records API's answer puts it there
        ("-1", "read as a number"),  # JSON paths read it as a list index: wrong answers
        ("+7", "read as a number"),
        ("1_0", "read as a number"),
        ("\u0663", "digits"),  # an Arabic-Indic digit
        ('a"b', "double quote"),  # SQLite cannot read its escaped JSON path
        ("a\\b", "backslash"),
    ],
)
def test_field_names_that_answers_or_json_paths_would_misread_are_refused(lead_type, name, message):
    with pytest.raises(ValidationError, match=message):
        services.save_record_type(document={"fields": [{"name": name}]}, record_type=lead_type)


def test_a_field_that_has_such_a_name_already_keeps_it_and_its_table_stays_usable(lead_type):
    """The rules came later: a table whose field was named so before must still save (the
    review of the first version: every change of such a table was a 400)."""
    RecordField.objects.create(record_type=lead_type, name="processId", type="text")
    document = record_type_document(lead_type)

    saved = services.save_record_type(
        document={**document, "description": "still usable"}, record_type=lead_type
    )

    assert saved.description == "still usable"
    assert saved.fields.filter(name="processId").exists()


def test_a_fields_type_changes_only_when_its_stored_values_fit_the_new_one(lead_type):
    """A text field holding "abc" became a number, and Query() served "abc" as one (found
    by an outside probe)."""
    services.create_record(record_type=lead_type, data={"Company": "Acme", "Notes": "abc"})
    document = record_type_document(lead_type)
    notes = next(f for f in document["fields"] if f["name"] == "Notes")
    website = next(f for f in document["fields"] if f["name"] == "Website")
    notes["type"], website["type"] = "number", "text"  # no record holds a Website

    with pytest.raises(ValidationError) as raised:
        services.save_record_type(document=document, record_type=lead_type)

    [message] = next(m for path, m in raised.value.message_dict.items() if path.endswith(".type"))
    assert "Records hold values of Notes that are not Number" in message
    notes["type"] = "long text"
    services.save_record_type(document=document, record_type=lead_type)
    assert lead_type.fields.get(name="Website").type == "text"


def test_a_created_record_is_written_as_it_is_returned(lead_type, owner):
    first = services.create_record(record_type=lead_type, data={"Company": "A"}, user=owner)
    second = services.create_record(
        record_type=lead_type, data={"Company": "B", "Amount": 7}, user=owner
    )
    assert (first.submission_id, second.submission_id) == (1, 2)
    assert not second._state.adding
    stored = Record.objects.get(pk=second.pk)
    assert stored.submission_id == 2
    assert stored.data == second.data == {**stored.data, "Company": "B", "Amount": 7}
    assert (stored.created_by, stored.modified_by) == (owner, owner)
    assert (stored.created_at, stored.modified_at) == (second.created_at, second.modified_at)
    assert second.created_at is not None
    assert SubmissionCounter.objects.get(record_type=lead_type).last_value == 2


@postgresql_only
def test_on_postgresql_a_create_takes_its_id_and_inserts_in_one_statement(lead_type):
    services.create_record(record_type=lead_type, data={"Company": "A"})  # makes the counter
    with CaptureQueriesContext(connection) as queries:
        record = services.create_record(record_type=lead_type, data={"Company": "B"})
    reads = ("SELECT", "LOCK TABLE")  # the field types, under the table's lock (locks)
    writes = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(reads)]
    assert len(writes) == 1, writes
    assert writes[0].startswith('WITH counter AS (UPDATE "records_submissioncounter"')
    assert record.submission_id == 2
    assert Record.objects.get(submission_id=2).data["Company"] == "B"


@pytest.mark.django_db(transaction=True)
def test_a_record_written_as_its_record_type_is_deleted_is_refused_not_a_500(application):
    """The delete won, and the write's insert failed on the foreign key: a 500 (an outside
    probe)."""
    record_type = RecordType.objects.create(application=application, name="Going")
    RecordType.objects.filter(pk=record_type.pk).delete()  # as the write starts

    with pytest.raises(RecordInvalid) as refused:
        services.create_record(record_type=record_type, data={})

    assert refused.value.errors == {
        "_recordTypeId": f"Record type {record_type.pk} does not exist (it was deleted)."
    }
