import pytest

from apps.records.models import RecordField, RecordType

Type = RecordField.Type

LEAD_FIELDS = [
    {"name": "Company", "type": Type.TEXT, "required": True},
    {"name": "Rating", "type": Type.CHOICE, "choices": ["Hot", "Warm", "Cold"]},
    {"name": "Tags", "type": Type.MULTI_CHOICE, "choices": ["Retail", "B2B", "Partner"]},
    {"name": "Amount", "type": Type.NUMBER},
    {"name": "Employees", "type": Type.INTEGER},
    {"name": "Active", "type": Type.BOOLEAN, "default": True},
    {"name": "Due", "type": Type.DATE},
    {"name": "Meeting", "type": Type.DATETIME},
    {"name": "Email", "type": Type.EMAIL},
    {"name": "Website", "type": Type.URL},
    {"name": "Notes", "type": Type.LONG_TEXT},
    {"name": "Extra", "type": Type.JSON},
]


@pytest.fixture
def lead_type(application) -> RecordType:
    """A "Lead" table with a field of every type; Company is required."""
    record_type = RecordType.objects.create(application=application, name="Lead")
    for position, values in enumerate(LEAD_FIELDS):
        RecordField.objects.create(record_type=record_type, position=position, **values)
    return record_type


@pytest.fixture
def lead_fields(lead_type) -> list[RecordField]:
    return list(lead_type.fields.all())
