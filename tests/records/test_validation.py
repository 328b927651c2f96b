from datetime import date, datetime
from decimal import Decimal

import pytest

from apps.records.validation import RecordInvalid, clean_record, parse_parameter
from tests.records.conftest import LEAD_FIELDS

FIELDS = LEAD_FIELDS


def errors_of(data, **options) -> dict[str, str]:
    with pytest.raises(RecordInvalid) as raised:
        clean_record(FIELDS, data, **options)
    return raised.value.errors


def test_a_valid_record_is_normalised_and_gets_every_field():
    cleaned = clean_record(
        FIELDS,
        {
            "Company": "Acme",
            "Rating": {"Selection": "Warm"},
            "Tags": ["B2B", {"Selection": "Partner"}, "B2B"],
            "Amount": 12.5,
            "Employees": 40.0,
            "Due": "2024-05-31",
            "Meeting": "2024-05-01T11:30:00+02:00",
            "Email": " sales@acme.example ",
            "Website": "https://acme.example/",
            "Extra": {"any": ["json", 1]},
        },
    )
    assert cleaned == {
        "Company": "Acme",
        "Rating": "Warm",
        "Tags": ["B2B", "Partner"],
        "Amount": 12.5,
        "Employees": 40,
        "Active": True,  # its default
        "Due": "2024-05-31",
        "Meeting": "2024-05-01T09:30:00.000Z",
        "Email": "sales@acme.example",
        "Website": "https://acme.example/",
        "Notes": None,
        "Extra": {"any": ["json", 1]},
    }


def test_every_bad_field_is_listed_at_once():
    errors = errors_of(
        {
            "Rating": "Tepid",
            "Tags": ["Retail", "Gold"],
            "Amount": "12",
            "Employees": 1.5,
            "Active": "yes",
            "Due": "31/05/2024",
            "Meeting": "tomorrow",
            "Email": "not-an-address",
            "Website": "acme",
            "Notes": 5,
            "Colour": "red",
        }
    )
    assert errors == {
        "Company": "This field is required.",
        "Rating": "'Tepid' is not one of Hot, Warm, Cold",
        "Tags": "'Gold' is not one of Retail, B2B, Partner",
        "Amount": "Expected a number.",
        "Employees": "Expected an integer (a whole number).",
        "Active": "Expected true or false.",
        "Due": "Expected a date as YYYY-MM-DD.",
        "Meeting": "Expected a date and time in ISO 8601, e.g. 2024-05-01T09:30:00Z.",
        "Email": "Enter a valid email address.",
        "Website": "Enter a valid URL, e.g. https://example.com/.",
        "Notes": "Expected text.",
        "Colour": "Unknown field; the fields are: Company, Rating, Tags, Amount, Employees, "
        "Active, Due, Meeting, Email, Website, Notes, Extra.",
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Amount", True),  # a boolean is not a number
        ("Employees", False),
        ("Employees", "3"),
        ("Employees", 2**63),
        ("Amount", float("nan")),
        ("Due", "2024-02-30"),
        ("Due", "2024-05-01T10:00:00Z"),
        ("Rating", {"Selection": "Warm", "Other": 1}),
        ("Rating", ["Warm"]),
        ("Tags", "Retail"),
        ("Company", ["Acme"]),
    ],
)
def test_values_of_the_wrong_type_are_refused(name, value):
    data = {"Company": "Acme", name: value}
    assert name in errors_of(data)


def test_a_required_field_needs_a_value_not_an_empty_one():
    assert errors_of({"Company": ""}) == {"Company": "This field is required."}
    assert errors_of({"Company": None}) == {"Company": "This field is required."}


def test_empty_optional_values_are_stored_as_null():
    cleaned = clean_record(FIELDS, {"Company": "Acme", "Rating": "", "Tags": [], "Extra": ""})
    assert cleaned["Rating"] is None
    assert cleaned["Tags"] is None
    assert cleaned["Extra"] == ""  # for a JSON field, "" is a value


def test_a_partial_update_checks_only_the_fields_given():
    assert clean_record(FIELDS, {"Rating": "Hot"}, partial=True) == {"Rating": "Hot"}
    assert errors_of({"Company": None, "Amount": "x"}, partial=True) == {
        "Company": "This field is required.",
        "Amount": "Expected a number.",
    }


def test_system_fields_are_read_only_and_ignored():
    document = {"RecordID": 4, "SubmissionId": 9, "ModifiedOn": "x", "Company": "Acme"}
    assert clean_record(FIELDS, document, partial=True) == {"Company": "Acme"}


def test_data_that_is_not_an_object_is_refused():
    assert errors_of(["Acme"]) == {"__all__": "Expected a JSON object of field values."}


def test_form_values_are_accepted():
    cleaned = clean_record(
        FIELDS,
        {
            "Company": "Acme",
            "Amount": Decimal("3.25"),
            "Employees": Decimal("7"),
            "Due": date(2024, 5, 31),
            "Meeting": datetime.fromisoformat("2024-05-01T09:30:00.123456+00:00"),
        },
    )
    assert cleaned["Amount"] == 3.25
    assert cleaned["Employees"] == 7
    assert cleaned["Due"] == "2024-05-31"
    assert cleaned["Meeting"] == "2024-05-01T09:30:00.123Z"


def test_a_naive_datetime_is_taken_in_the_server_time_zone(settings):
    settings.TIME_ZONE = "UTC"
    assert clean_record(FIELDS, {"Meeting": "2024-05-01 09:30"}, partial=True) == {
        "Meeting": "2024-05-01T09:30:00.000Z"
    }


@pytest.mark.parametrize(
    ("field_type", "raw", "value"),
    [
        ("integer", "10", 10),
        ("number", "9.5", 9.5),
        ("boolean", "true", True),
        ("boolean", "0", False),
        ("multi-choice", "B2B", ["B2B"]),
        ("date", "2024-05-31", "2024-05-31"),
    ],
)
def test_url_parameters_are_read_as_values_of_the_field(field_type, raw, value):
    field = {"name": "F", "type": field_type, "choices": ["B2B"]}
    assert parse_parameter(field, raw) == value


@pytest.mark.parametrize(
    ("field_type", "raw"),
    [
        # In range as written, out of range in UTC (which is how they are stored).
        ("datetime", "0001-01-01T00:00:00+01:00"),
        ("datetime", "9999-12-31T23:59:59-01:00"),
        ("number", 10**400),  # an integer literal: JSON parsers keep it whole
        ("number", Decimal("1e400")),
        ("number", "1e400"),  # a URL parameter
        ("number", str(10**400)),
    ],
)
def test_values_beyond_what_is_stored_are_refused_with_a_reason_not_a_crash(field_type, raw):
    """An OverflowError used to escape as a 500, or, inside a flow, fail its whole run as an
    "Internal error" after earlier records of the page had been written (an outside probe)."""
    field = {"name": "F", "type": field_type}
    with pytest.raises(ValueError, match=r"range|too large|finite"):
        parse_parameter(field, raw)
    with pytest.raises(RecordInvalid) as raised:
        clean_record([field], {"F": raw})
    assert "F" in raised.value.errors
