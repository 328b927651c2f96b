"""The management API of data tables: `/api/v1/recordTypes` (the DESIGN §3 recordType
document) and `/api/v1/records?_recordTypeId=` (record documents, as Query() shows them,
with their `_recordTypeId`)."""

import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import ValidationError

from apps.core.api import DocumentViewSet, foreign_id, invalid, ref
from apps.core.exceptions import ApiProblem
from apps.core.openapi import crud_schema
from apps.flows.pipeline import as_id
from apps.records import services
from apps.records.api import filters
from apps.records.api.schema import (
    RECORD_EXAMPLE,
    RECORD_REQUEST_EXAMPLE,
    RECORD_SCHEMA,
    RECORD_TYPE_EXAMPLE,
    RECORD_TYPE_SCHEMA,
)
from apps.records.models import Record, RecordField, RecordType
from apps.records.selectors import record_document, record_type_document, steps_using
from apps.records.validation import RecordInvalid

ROOT = "non_field_errors"
RECORD_TYPE_KEYS = ("_id", "name", "_integrationId", "description", "fields")
STAMPS = ("createdAt", "lastModified")
JSON_TYPES = {"name": str, "description": str, "fields": list}


def django_errors(exc: DjangoValidationError) -> ValidationError:
    """A service's ValidationError ("fields[0].name", "__all__") as document paths."""
    errors = {
        ROOT if key == NON_FIELD_ERRORS else re.sub(r"\[(\d+)\]", r".\1", key): list(messages)
        for key, messages in exc.message_dict.items()
    }
    return invalid(errors)


# --- Record types ---------------------------------------------------------------------


def _record_type_values(document: Any, instance: RecordType | None) -> dict:
    """The whole recordType document (PUT semantics: what is left out takes its default),
    after checking its shape: unknown keys, read-only ones and JSON types."""
    if not isinstance(document, Mapping):
        raise invalid({ROOT: ["The recordType document must be a JSON object."]})
    errors: dict[str, list[str]] = {}
    known = ", ".join((*RECORD_TYPE_KEYS, *STAMPS))
    for key in document:
        if key not in RECORD_TYPE_KEYS and key not in STAMPS:
            errors[str(key)] = [f"Unknown field. The fields are: {known}."]
    if messages := foreign_id(document, instance, "recordType"):
        errors["_id"] = messages
    for key, kind in JSON_TYPES.items():
        if key in document and not isinstance(document[key], kind):
            errors[key] = [f"Expected a{' list' if kind is list else ' string'}."]
    integration = document.get("_integrationId")
    if integration is not None and as_id(integration) is None:
        errors["_integrationId"] = ["Expected the id of an integration (application)."]
    if errors:
        raise invalid(errors)
    return {
        "name": document.get("name", ""),
        "description": document.get("description", ""),
        "_integrationId": integration,
        "fields": document.get("fields", []),
    }


def _users_of(record_type: RecordType) -> tuple[list, list]:
    return list(record_type.operations.all()), list(record_type.views.all())


def _check_still_used_well(record_type: RecordType, moved: bool) -> None:
    """Operations and views of the record type must stay in its application: refuse the
    change (it is rolled back) naming them. That they keep naming fields it has is the
    records service's check (fields_changing), as for the admin."""
    operations, views = _users_of(record_type)
    errors: dict[str, list[str]] = {}
    if moved and (operations or views):
        names = [f"operation {o.name!r}" for o in operations] + [f"view {v.name!r}" for v in views]
        errors["_integrationId"] = [
            "The record type cannot move to another integration while these use it: "
            + ", ".join(names)
            + "."
        ]
    if errors:
        raise invalid(errors)


@crud_schema(
    name="record type",
    tag="recordTypes",
    schema=RECORD_TYPE_SCHEMA,
    example=RECORD_TYPE_EXAMPLE,
    merge_example={"description": "Leads registered by partners and by the web form."},
    delete_summary="Delete a record type (409 while it has records or operations and views use it)",
)
class RecordTypeViewSet(DocumentViewSet):
    """Record types (data tables): their fields are replaced as a whole on every write."""

    filterset_class = filters.RecordTypeFilter

    def get_queryset(self):
        return RecordType.objects.prefetch_related("fields")

    def render(self, instance: RecordType) -> dict:
        return record_type_document(instance)

    def save(self, document: Any, instance: RecordType | None = None) -> RecordType:
        values = _record_type_values(document, instance)
        before = instance.application_id if instance is not None else None
        try:
            saved = services.save_record_type(document=values, record_type=instance)
        except DjangoValidationError as exc:
            raise django_errors(exc) from None
        if instance is not None:
            _check_still_used_well(saved, moved=saved.application_id != before)
        # The prefetched fields are those before the save.
        return self.get_queryset().get(pk=saved.pk)

    def remove(self, instance: RecordType) -> None:
        operations, views = _users_of(instance)
        steps = steps_using(instance)
        count = Record.objects.filter(record_type=instance).count()
        if not (count or operations or views or steps):
            instance.delete()
            return
        reasons = []
        if count:
            reasons.append(f"it has {count} record(s) (empty the table first)")
        if steps:
            reasons.append(
                "exports or imports read or write it: "
                + ", ".join(f"{type(s).__name__.lower()} {s.name!r}" for s in steps)
            )
        if operations:
            reasons.append("operations use it: " + ", ".join(o.name for o in operations))
        if views:
            reasons.append("views use it: " + ", ".join(v.name for v in views))
        raise ApiProblem(
            409,
            f"Record type {instance.name!r} cannot be deleted: " + "; ".join(reasons) + ".",
            code="in-use",
            records=count,
            operations=[ref(o) for o in operations],
            views=[ref(v) for v in views],
        )


# --- Records --------------------------------------------------------------------------


def record_problem(exc: RecordInvalid, fields: list[RecordField]) -> ApiProblem:
    """Every bad field at once, each with its type (and the values a choice allows)."""
    by_name = {field.name: field for field in fields}
    entries = []
    for name, message in exc.errors.items():
        entry: dict[str, Any] = {
            "pointer": "#" if name == NON_FIELD_ERRORS else f"#/{name}",
            "detail": message,
        }
        if (field := by_name.get(name)) is not None:
            entry["type"] = field.type
            if field.type in RecordField.CHOICE_TYPES:
                entry["allowed"] = list(field.choices)
        entries.append(entry)
    names = ", ".join(name for name in exc.errors if name != NON_FIELD_ERRORS) or "the record"
    return ApiProblem(
        400,
        f"The record is invalid ({len(entries)} problem(s)): {names}.",
        code="invalid-record",
        errors=entries,
    )


def _record_type_of(value: Any) -> RecordType:
    pk = as_id(value)
    found = (
        RecordType.objects.prefetch_related("fields").filter(pk=pk).first()
        if pk is not None
        else None
    )
    if found is None:
        if value is None:
            message = "Required: the id of the record's record type."
        else:
            message = f"Record type {value} does not exist."
        raise invalid({"_recordTypeId": [message]})
    return found


def _values(document: Any) -> dict:
    if not isinstance(document, Mapping):
        raise invalid({ROOT: ["A record is a JSON object of values by field name."]})
    return {key: value for key, value in document.items() if key != "_recordTypeId"}


@crud_schema(
    name="record",
    tag="records",
    schema=RECORD_SCHEMA,
    example=RECORD_EXAMPLE,
    request_example=RECORD_REQUEST_EXAMPLE,
    merge_example={"Rating": "Hot"},
    list_description="The records of one record type (`_recordTypeId` is required), oldest "
    "first, as a JSON array; the next page is in the Link header (rel=next).",
)
class RecordViewSet(DocumentViewSet):
    """Records of a data table. Values are validated against the record type's fields;
    every write gives the record the next SubmissionId."""

    filterset_class = filters.RecordFilter

    def get_queryset(self):
        return Record.objects.select_related("record_type", "created_by", "modified_by")

    def fields_of(self, record: Record) -> list[RecordField]:
        return list(record.record_type.fields.all())

    def render(self, instance: Record, fields: list[RecordField] | None = None) -> dict:
        if fields is None:
            fields = self.fields_of(instance)
        return {"_recordTypeId": str(instance.record_type_id), **record_document(instance, fields)}

    def filter_queryset(self, queryset):
        # The filters (_recordTypeId is required) are those of the list, not of one record.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def list(self, request, *args, **kwargs):
        records = self.filter_queryset(self.get_queryset())  # 400 without _recordTypeId
        record_type = _record_type_of(request.query_params.get("_recordTypeId"))
        fields = list(record_type.fields.all())
        page = self.paginate_queryset(records)
        return self.get_paginated_response([self.render(record, fields) for record in page])

    def save(self, document: Any, instance: Record | None = None) -> Record:
        values = _values(document)
        if instance is None:
            record_type = _record_type_of(document.get("_recordTypeId"))
            fields = list(record_type.fields.all())
            try:
                return services.create_record(
                    record_type=record_type, data=values, user=self.request.user
                )
            except RecordInvalid as exc:
                raise record_problem(exc, fields) from None
        given = document.get("_recordTypeId")
        if given is not None and str(given) != str(instance.record_type_id):
            raise invalid({"_recordTypeId": ["A record cannot move to another record type."]})
        fields = self.fields_of(instance)
        # PUT semantics: a field left out takes its default (or becomes empty).
        whole = {field.name: values.pop(field.name, field.default) for field in fields}
        try:
            return services.update_record(
                record=instance, data={**whole, **values}, user=self.request.user
            )
        except RecordInvalid as exc:
            raise record_problem(exc, fields) from None

    def remove(self, instance: Record) -> None:
        services.delete_record(record=instance)
