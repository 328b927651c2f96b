"""OpenAPI of the surface-admin resources (recordTypes, records, operations, views): every
CRUD operation with request and response examples, as the flows' resources have."""

from typing import Any

from apps.flows.api.schema import STAMPS

# --- Documents ------------------------------------------------------------------------

FIELD_TYPES = [
    "text",
    "long text",
    "number",
    "integer",
    "boolean",
    "date",
    "datetime",
    "choice",
    "multi-choice",
    "email",
    "url",
    "json",
]

RECORD_TYPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "_id": {"type": "string", "readOnly": True},
        "name": {"type": "string", "description": "Unique within the integration."},
        "_integrationId": {
            "oneOf": [{"type": "string"}, {"type": "integer"}],
            "description": "The integration (application) the table belongs to.",
        },
        "description": {"type": "string"},
        "fields": {
            "type": "array",
            "description": "Replaced as a whole: fields are matched by name, so the values "
            "of a field that stays are kept.",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "type": {"type": "string", "enum": FIELD_TYPES, "default": "text"},
                    "required": {"type": "boolean", "default": False},
                    "choices": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "choice and multi-choice fields: the allowed values.",
                    },
                    "default": {"description": "Given to new records without a value."},
                },
            },
        },
        "lastModified": {"type": "string", "format": "date-time", "readOnly": True},
        "createdAt": {"type": "string", "format": "date-time", "readOnly": True},
    },
}
RECORD_TYPE_EXAMPLE = {
    "_id": "21",
    "name": "Lead",
    "_integrationId": "3",
    "description": "Leads registered by partners.",
    "fields": [
        {"name": "Company", "type": "text", "required": True},
        {"name": "Rating", "type": "choice", "required": False, "choices": ["Hot", "Warm", "Cold"]},
        {"name": "Employees", "type": "integer", "required": False, "default": 1},
    ],
    **STAMPS,
}

RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The system fields, then a value per field of the record type, by field "
    'name (choices as {"Selection": …}; null when the record has none).',
    "properties": {
        "_recordTypeId": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "RecordID": {"type": "integer", "readOnly": True},
        "CreatedBy": {"type": "string", "nullable": True, "readOnly": True},
        "CreatedOn": {"type": "string", "format": "date-time", "readOnly": True},
        "ModifiedBy": {"type": "string", "nullable": True, "readOnly": True},
        "ModifiedOn": {"type": "string", "format": "date-time", "readOnly": True},
        "SubmissionId": {"type": "integer", "readOnly": True},
    },
    "additionalProperties": {},
}
RECORD_EXAMPLE = {
    "_recordTypeId": "21",
    "RecordID": 17,
    "CreatedBy": "builder",
    "CreatedOn": "2024-05-01T09:30:00.000Z",
    "ModifiedBy": "builder",
    "ModifiedOn": "2024-05-01T09:30:00.000Z",
    "SubmissionId": 41,
    "Company": "Acme",
    "Rating": {"Selection": "Warm"},
    "Employees": 120,
}
RECORD_REQUEST_EXAMPLE = {
    "_recordTypeId": "21",
    "Company": "Acme",
    "Rating": "Warm",
    "Employees": 120,
}
