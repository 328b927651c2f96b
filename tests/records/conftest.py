import json
from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Any

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


def record_type_form(
    record_type: RecordType,
    *,
    changed: Mapping[str, Mapping[str, Any]] = MappingProxyType({}),
    deleted: Collection[str] = (),
) -> dict[str, Any]:
    """The record type's admin page as a builder posts it: its fields as stored, with the
    `changed` ones' values replaced ({"Amount": {"type": "text"}}) and `deleted` ticked."""
    data = {
        "application": record_type.application_id,
        "name": record_type.name,
        "description": record_type.description,
    }
    fields = list(record_type.fields.order_by("position", "pk"))
    for index, field in enumerate(fields):
        values = {
            "id": field.pk,
            "record_type": record_type.pk,
            "position": field.position,
            "name": field.name,
            "type": field.type,
            "choices": "\n".join(field.choices or []),
            "default": "" if field.default is None else json.dumps(field.default),
        }
        if field.required:
            values["required"] = "on"
        if field.name in deleted:
            values["DELETE"] = "on"
        values |= changed.get(field.name, {})
        data |= {f"fields-{index}-{name}": value for name, value in values.items()}
    return data | {"fields-TOTAL_FORMS": len(fields), "fields-INITIAL_FORMS": len(fields)}
