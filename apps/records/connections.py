"""The `records` connection kind: flows read and write Flowsite's own data tables.

An export on a records connection is a query (a view: record type, filters, ordering) read
page by page; an import creates, updates, upserts (by a key field) or deletes records. The
engine reaches them through `DataTables`, its records port, so flows and the integration
surface share one data layer (the same validation, the same SubmissionIds).
"""

from functools import cached_property
from typing import Any

from apps.accounts.models import User
from apps.flows.connection_kinds import ConnectionKind
from apps.flows.engine.context import RecordsError
from apps.flows.models import Connection, Export
from apps.flows.pipeline import as_id
from apps.records.models import Record, RecordField, RecordType
from apps.records.selectors import (
    OPS,
    SYSTEM_KEYS,
    InvalidQuery,
    filter_records,
    query_records,
    record_document,
    steps_using,
)
from apps.records.services import create_record, delete_record, update_record, upsert_record
from apps.records.validation import RecordInvalid

ACTIONS = ("create", "update", "upsert", "delete")
QUERY_KEYS = {"_recordTypeId", "filters", "ordering"}
WRITE_KEYS = {"_recordTypeId", "action", "keyField"}


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def _record_type(config: Any, keys: set[str]) -> tuple[RecordType | None, list[str]]:
    if not isinstance(config, dict):
        return None, ['An object, e.g. {"_recordTypeId": "3"}.']
    errors = [f"Unknown field {key!r}." for key in sorted(set(config) - keys)]
    pk = as_id(config.get("_recordTypeId"))
    record_type = RecordType.objects.filter(pk=pk).first() if pk else None
    if record_type is None:
        errors.append(f"_recordTypeId: record type {config.get('_recordTypeId')!r} does not exist.")
    return record_type, errors


def query_errors(config: Any, fields: list[RecordField] | None = None) -> list[str]:
    """Problems with a records export's query, against its record type's fields (or these
    `fields`); templated values are checked when it runs."""
    record_type, errors = _record_type(config, QUERY_KEYS)
    if record_type is None:
        return errors
    fields = list(record_type.fields.all()) if fields is None else fields
    names = {field.name for field in fields} | set(SYSTEM_KEYS)
    constant = []
    for index, item in enumerate(config.get("filters") or []):
        where = f"filters[{index}]"
        if not isinstance(item, dict) or set(item) - {"field", "op", "value"}:
            errors.append(f'{where}: expected {{"field", "op", "value"}}.')
        elif item.get("field") not in names:
            errors.append(f"{where}: {item.get('field')!r} is not a field of {record_type.name}.")
        elif item.get("op", "eq") not in OPS:
            errors.append(f"{where}: the operators are {', '.join(OPS)}.")
        elif not _is_template(item.get("value")):
            constant.append((item["field"], item.get("op", "eq"), item.get("value")))
    for index, item in enumerate(config.get("ordering") or []):
        if not (
            isinstance(item, dict)
            and item.get("field") in names
            and item.get("direction", "asc") in ("asc", "desc")
        ):
            errors.append(f'ordering[{index}]: expected {{"field", "direction": "asc"|"desc"}}.')
    try:
        filter_records(Record.objects.none(), fields, constant)
    except InvalidQuery as exc:
        errors.extend(f"{where}: {message}" for where, message in exc.errors.items())
    return errors


def write_errors(config: Any, fields: list[RecordField] | None = None) -> list[str]:
    record_type, errors = _record_type(config, WRITE_KEYS)
    action = config.get("action", "create") if isinstance(config, dict) else None
    if action not in ACTIONS:
        errors.append(f"action: one of {', '.join(ACTIONS)}.")
    if record_type is not None and action == "upsert":
        if fields is None:
            names = set(record_type.fields.values_list("name", flat=True))
        else:
            names = {field.name for field in fields}
        if config.get("keyField") not in names:
            errors.append(f"keyField: the field that identifies a record, one of {sorted(names)}.")
    return errors


def steps_broken_by(sender, record_type, fields, **kwargs) -> list[str]:
    """signals.fields_changing: what the exports and imports of `record_type` would no
    longer do with `fields` (a field they filter, order or key on removed, renamed or
    retyped); only what the change breaks, not what was broken already."""
    steps = steps_using(record_type)
    saved = list(RecordField.objects.filter(record_type=record_type)) if steps else []
    messages = []
    for step in steps:
        check = query_errors if isinstance(step, Export) else write_errors
        before = set(check(step.records, saved))
        messages += [
            f'The {type(step).__name__.lower()} "{step.name}" would break: {problem} '
            "Change it first."
            for problem in check(step.records, fields)
            if problem not in before
        ]
    return messages


# Registered in RecordsConfig.ready(): flows checks a records export or import with these.
RECORDS = ConnectionKind(
    type=Connection.Type.RECORDS, query_errors=query_errors, write_errors=write_errors
)


class DataTables:
    """The engine's records port for one run: writes are recorded as the run's caller."""

    def __init__(self, *, caller_id: int | None = None):
        self.caller_id = caller_id
        self._types: dict[Any, tuple[RecordType, list]] = {}

    @cached_property
    def user(self):
        """Loaded on the first write only: most runs never touch a data table."""
        return User.objects.filter(pk=self.caller_id).first() if self.caller_id else None

    def _type(self, config: dict) -> tuple[RecordType, list]:
        key = config.get("_recordTypeId")
        if key not in self._types:
            pk = as_id(key)
            record_type = RecordType.objects.filter(pk=pk).first() if pk else None
            if record_type is None:
                raise RecordsError(f"record type {key!r} does not exist.")
            self._types[key] = (record_type, list(record_type.fields.all()))
        return self._types[key]

    def read(self, query: dict, *, after: str | None, limit: int) -> tuple[list, str | None]:
        record_type, fields = self._type(query)
        try:
            page = query_records(
                record_type,
                filters=[
                    (item.get("field"), item.get("op", "eq"), item.get("value"))
                    for item in query.get("filters") or []
                ],
                ordering=[
                    (item.get("field"), item.get("direction", "asc"))
                    for item in query.get("ordering") or []
                ],
                after=after,
                limit=limit,
                fields=fields,
            )
        except InvalidQuery as exc:
            raise RecordsError(str(exc)) from None
        return page.documents, page.next_cursor

    def write(self, target: dict, data: Any) -> dict:
        record_type, fields = self._type(target)
        if not isinstance(data, dict):
            raise RecordsError(f"a record to write is an object, not {data!r:.60}.")
        action = target.get("action", "create")
        try:
            if action == "create":
                record = create_record(record_type=record_type, data=data, user=self.user)
            elif action == "upsert":
                record, _ = upsert_record(
                    record_type=record_type,
                    key_field=target.get("keyField", ""),
                    data=data,
                    user=self.user,
                )
            else:
                record = self._existing(record_type, data.get("RecordID"))
                if action == "delete":
                    document = record_document(record, fields)
                    delete_record(record=record)
                    return document
                record = update_record(record=record, data=data, user=self.user)
        except RecordInvalid as exc:
            raise RecordsError(str(exc)) from None
        return record_document(record, fields)

    @staticmethod
    def _existing(record_type: RecordType, record_id: Any) -> Record:
        pk = as_id(record_id)
        record = Record.objects.filter(record_type=record_type, pk=pk).first() if pk else None
        if record is None:
            raise RecordsError(f"no {record_type.name} record has RecordID {record_id!r}.")
        return record
