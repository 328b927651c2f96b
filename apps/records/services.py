"""Writes for data tables: records (validated, a new submission id on every write) and
record types with their fields (from the recordType document of the management API)."""

import hashlib
import json
from collections.abc import Collection, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import CharField, Field, Max, Value
from django.db.models.fields.json import compile_json_path
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from apps.accounts.models import User
from apps.core import rows
from apps.flows.models import Application
from apps.flows.pipeline import as_id
from apps.records import indexes, locks, selectors, signals
from apps.records.models import (
    Record,
    RecordField,
    RecordType,
    SubmissionCounter,
    new_field_name,
)
from apps.records.validation import REQUIRED, RecordInvalid, clean_record, coerce_value


def _locked_counter(record_type: RecordType) -> SubmissionCounter:
    """The record type's counter row, locked until the current transaction ends.

    Every writer of the record type queues here, so ids are allocated in commit order
    (see SubmissionCounter). Lock order, the same for every writer so that none can
    deadlock: an upsert's key (PostgreSQL advisory lock), then the record's row (an update),
    then this counter, last, to hold it as briefly as possible.
    """
    counters = SubmissionCounter.objects.select_for_update()
    try:
        return counters.get(record_type=record_type)
    except SubmissionCounter.DoesNotExist:
        # First write: start after any id already used (records loaded by a fixture…).
        highest = Record.objects.filter(record_type=record_type).aggregate(
            highest=Max("submission_id")
        )["highest"]
        # Two first writers race: the loser's INSERT waits for the winner's commit, fails,
        # and get_or_create then locks the winner's row.
        counter, _ = counters.get_or_create(
            record_type=record_type, defaults={"last_value": highest or 0}
        )
        return counter


def _next_submission_id(record_type: RecordType) -> int:
    """The next id, the counter row locked until the transaction ends: one statement (the
    increment takes the lock), so the lock is held for one round trip less."""
    table = SubmissionCounter._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_value = last_value + 1 "  # noqa: S608 - the model's table
            "WHERE record_type_id = %s RETURNING last_value",
            [record_type.pk],
        )
        row = cursor.fetchone()
    if row is not None:
        return row[0]
    counter = _locked_counter(record_type)  # the first write: the row is made
    counter.last_value += 1
    counter.save(update_fields=["last_value"])
    return counter.last_value


@lru_cache(maxsize=8)
def _stamped_insert(alias: str) -> tuple[str, tuple[Field, ...]]:
    """PostgreSQL: one statement that takes the record type's next submission id (locking
    its counter row, as _next_submission_id does) and inserts the record with it; nothing
    when the counter row does not exist yet. The values are cast to their columns' types:
    in INSERT … SELECT, PostgreSQL would take an untyped literal for text."""
    database = connections[alias]
    quote = database.ops.quote_name
    fields = tuple(
        field
        for field in Record._meta.concrete_fields
        if not field.primary_key and field.name != "submission_id"
    )
    columns = ", ".join(quote(field.column) for field in fields)
    values = ", ".join(f"%s::{field.db_type(database)}" for field in fields)
    statement = (
        f"WITH counter AS (UPDATE {quote(SubmissionCounter._meta.db_table)} "  # noqa: S608 - quoted names
        "SET last_value = last_value + 1 WHERE record_type_id = %s RETURNING last_value) "
        f"INSERT INTO {quote(Record._meta.db_table)} ({columns}, {quote('submission_id')}) "
        f"SELECT {values}, counter.last_value FROM counter "
        f"RETURNING {quote(Record._meta.pk.column)}, {quote('submission_id')}"
    )
    return statement, fields


def _insert_stamped(record: Record) -> bool:
    """Insert `record` with the next submission id in one round trip (PostgreSQL). The
    counter is locked from this statement to the commit, as with the UPDATE and the INSERT
    apart, but for one round trip and one wait for this thread's turn less. False, having
    written nothing, where that cannot be done (another database, or the record type's
    first write, which makes the counter row)."""
    if connection.vendor != "postgresql":
        return False
    statement, fields = _stamped_insert(connection.alias)
    params = [record.record_type_id, *rows.prepared(record, fields, connection, timezone.now())]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        row = cursor.fetchone()
    if row is None:
        return False
    record.pk, record.submission_id = row
    rows.written(record, connection.alias)
    return True


def stamp(record: Record) -> Record:
    """Give a record written with `stamp=False` its submission id: the next of its record
    type, under the counter lock, which is held until the transaction commits. Call it as
    the transaction's last write (Execute() calls it after the operation's flow ran, so
    other writers of the record type do not wait for the flow)."""
    record.submission_id = _next_submission_id(record.record_type)
    Record.objects.filter(pk=record.pk).update(submission_id=record.submission_id)
    return record


LOADED = ("record_type", "created_by", "modified_by")  # foreign keys set from objects


def fields_for_write(record_type: RecordType) -> list[RecordField]:
    """The record type's fields to validate a write with. On PostgreSQL their types and
    names are checked with the records table locked for writing, and stay as they are
    until the caller's transaction ends (see locks); the fields as the record type holds
    them (prefetched, perhaps a moment ago) are used when they are still those. Call it
    inside that transaction."""
    fields = list(record_type.fields.all())
    if connection.vendor != "postgresql":
        return fields
    current = locks.types_for_write(
        Record._meta.db_table, RecordField._meta.db_table, record_type.pk
    )
    used = ",".join(
        f"{field.pk}:{field.type}:{field.name}" for field in sorted(fields, key=lambda f: f.pk)
    )
    if current == used:
        return fields
    return list(RecordField.objects.filter(record_type_id=record_type.pk))


def _actor(user: User | None) -> User | None:
    return user if user is not None and user.is_authenticated else None


def _insert(
    *, record_type: RecordType, values: dict[str, Any], user: User | None, stamped: bool
) -> Record:
    actor = _actor(user)
    record = Record(record_type=record_type, data=values, created_by=actor, modified_by=actor)
    # The unique (record type, submission id) constraint holds by construction, and the
    # foreign keys are loaded objects: checking them would cost a query each per write.
    record.full_clean(validate_constraints=False, exclude=["submission_id", *LOADED])
    if stamped and _insert_stamped(record):
        return record
    if stamped:  # last: the counter is locked until the transaction ends
        record.submission_id = _next_submission_id(record_type)
    record.save()
    return record


def _rewrite(
    *,
    record: Record,
    fields: list[RecordField],
    values: dict[str, Any],
    user: User | None,
    stamped: bool,
) -> Record:
    current = Record.objects.select_for_update().only("data").get(pk=record.pk)
    # Keys the fields do not name are kept: a field deleted took its values with it (see
    # field_names_changed), and fields read just before a rename name the moved values
    # otherwise (the review: they were dropped).
    data = {**current.data, **values}
    record.data = data
    record.modified_by = _actor(user)
    record.full_clean(validate_constraints=False, exclude=LOADED)
    if stamped:  # after the record's row lock (the lock order)
        record.submission_id = _next_submission_id(record.record_type)
    record.save(update_fields=["data", "submission_id", "modified_by", "modified_at"])
    return record


# Writes that join a caller's transaction (Execute(), the admin) without a savepoint of
# their own: its RELEASE was a round trip made while the record type's counter is locked.
# The data is validated first, outside the block, so a RecordInvalid leaves the caller's
# transaction usable (the flow engine reports it per record and writes the others); a
# database error inside fails the caller's transaction, which then rolls back as a whole.


def create_record(
    *,
    record_type: RecordType,
    data: Mapping[str, Any],
    user: User | None = None,
    stamp: bool = True,
) -> Record:
    """A new record: `data` validated (defaults for missing fields), the next submission
    id. Raises RecordInvalid listing every bad field.

    `stamp=False` writes it without a submission id (invisible to `since` until then):
    the caller must call stamp() before its transaction commits."""
    try:
        with transaction.atomic(savepoint=False):
            try:
                values = clean_record(fields_for_write(record_type), data)
            except RecordInvalid as invalid:  # raised out of the block: nothing to roll back
                refused = invalid
            else:
                return _insert(record_type=record_type, values=values, user=user, stamped=stamp)
    except IntegrityError:
        # The record type was deleted as the record was written (a 500; outside probe).
        if connection.in_atomic_block or RecordType.objects.filter(pk=record_type.pk).exists():
            raise
        raise RecordInvalid(
            {"_recordTypeId": f"Record type {record_type.pk} does not exist (it was deleted)."}
        ) from None
    raise refused


def update_record(
    *, record: Record, data: Mapping[str, Any], user: User | None = None, stamp: bool = True
) -> Record:
    """Change the given fields of a record (a partial update); the record gets the next
    submission id even when no value changed, and `user` as its modifier. `stamp=False`
    as for create_record: the record keeps its id until stamp()."""
    with transaction.atomic(savepoint=False):
        fields = fields_for_write(record.record_type)
        try:
            values = clean_record(fields, data, partial=True)
        except RecordInvalid as invalid:  # raised once out of the block: nothing to roll back
            refused = invalid
        else:
            return _rewrite(record=record, fields=fields, values=values, user=user, stamped=stamp)
    raise refused


@transaction.atomic
def delete_record(*, record: Record) -> None:
    """Delete a record. (Incremental sync by submission id does not see deletions.)"""
    record.delete()


def _lock_key(record_type: RecordType, key_field: str, key_value: Any) -> None:
    """Serialise upserts of one key value until the transaction ends. PostgreSQL: an
    advisory lock on a hash of (record type, field, value); SQLite lets one writer in at
    a time already (IMMEDIATE transactions)."""
    if connection.vendor != "postgresql":
        return
    text = json.dumps([record_type.pk, key_field, key_value], sort_keys=True, default=str)
    key = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


@transaction.atomic
def upsert_record(
    *,
    record_type: RecordType,
    key_field: str,
    data: Mapping[str, Any],
    user: User | None = None,
) -> tuple[Record, bool]:
    """Update the record whose `key_field` equals the value in `data` (a partial update),
    else create one. Returns (record, created).

    The key value is locked before the lookup (`_lock_key`), so two upserts of the same key
    cannot both create: the second waits, then finds the first one's record.
    """
    fields = fields_for_write(record_type)
    by_name = {field.name: field for field in fields}
    key = by_name.get(key_field)
    if key is None or key.type in (RecordField.Type.MULTI_CHOICE, RecordField.Type.JSON):
        names = ", ".join(name for name, field in by_name.items() if field is not key)
        raise RecordInvalid(
            {NON_FIELD_ERRORS: f"{key_field!r} cannot be the key; the key can be one of: {names}."}
        )
    if not isinstance(data, Mapping):
        raise RecordInvalid({NON_FIELD_ERRORS: "Expected a JSON object of field values."})
    try:
        key_value = coerce_value(key, data.get(key_field))
    except ValueError as exc:
        raise RecordInvalid({key_field: str(exc)}) from None
    if key_value is None:
        raise RecordInvalid({key_field: f"{REQUIRED} It is the key of the upsert."})
    values = clean_record(fields, data, partial=True)
    _lock_key(record_type, key_field, key_value)
    matches = list(
        selectors.filter_records(
            Record.objects.filter(record_type=record_type),
            fields,
            [(key_field, "eq", key_value)],
        ).order_by("pk")[:2]
    )
    if len(matches) > 1:
        raise RecordInvalid(
            {key_field: "More than one record has this value; an upsert needs a unique key."}
        )
    if matches:
        record = _rewrite(record=matches[0], fields=fields, values=values, user=user, stamped=True)
        return record, False
    values = clean_record(fields, data)
    return _insert(record_type=record_type, values=values, user=user, stamped=True), True


# --- Record types ---------------------------------------------------------------------

FIELD_KEYS = {"name", "type", "required", "choices", "default"}


def _document_fields(value: Any, errors: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The well-formed fields of the document, with their index in it."""
    if not isinstance(value, list):
        errors["fields"] = "Expected a list of fields."
        return []
    fields, seen = [], set()
    for index, item in enumerate(value):
        where = f"fields[{index}]"
        if not isinstance(item, Mapping):
            errors[where] = "Expected a field object."
            continue
        unknown = sorted(set(item) - FIELD_KEYS - {"_id"})
        if unknown:
            errors[where] = f"Unknown keys {', '.join(unknown)}; a field has: " + ", ".join(
                sorted(FIELD_KEYS)
            )
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            errors[f"{where}.name"] = "A field needs a name."
            continue
        if name in seen:
            errors[f"{where}.name"] = f"There are two fields named {name!r}."
            continue
        seen.add(name)
        kind = item.get("type", RecordField.Type.TEXT)
        if kind not in RecordField.Type.values:
            errors[f"{where}.type"] = f"{kind!r} is not one of: " + ", ".join(
                RecordField.Type.values
            )
            continue
        if not isinstance(item.get("required", False), bool):
            errors[f"{where}.required"] = "Expected true or false."
            continue
        fields.append(
            (
                index,
                {
                    "name": name,
                    "type": kind,
                    "required": item.get("required", False),
                    "choices": item.get("choices") or [],
                    "default": item.get("default"),
                },
            )
        )
    return fields


@transaction.atomic
def save_record_type(
    *, document: Mapping[str, Any], record_type: RecordType | None = None
) -> RecordType:
    """Create a record type from a recordType document, or change `record_type`:
    `{"name", "_integrationId", "description", "fields": [{"name", "type", "required",
    "choices", "default"}]}`. The fields, when given, replace the current ones (matched
    by name, so values are kept); raises ValidationError with every problem at once."""
    if not isinstance(document, Mapping):
        raise ValidationError({NON_FIELD_ERRORS: "Expected a JSON object."})
    creating = record_type is None
    record_type = record_type or RecordType()
    errors: dict[str, Any] = {}
    if "name" in document or creating:
        record_type.name = document.get("name") if isinstance(document.get("name"), str) else ""
    if "description" in document:
        description = document["description"]
        record_type.description = description if isinstance(description, str) else ""
    if "_integrationId" in document or creating:
        application = Application.objects.filter(pk=as_id(document.get("_integrationId"))).first()
        if application is None:
            errors["_integrationId"] = "Not the id of an integration (application)."
        else:
            record_type.application = application
    fields = _document_fields(document["fields"], errors) if "fields" in document else None
    try:
        record_type.full_clean(exclude=["application"] if "_integrationId" in errors else None)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    stored_types = dict(record_type.fields.values_list("pk", "type")) if record_type.pk else {}
    prepared = _prepare_fields(record_type, fields, errors) if fields is not None else None
    if (
        prepared is not None
        and record_type.pk
        and not errors
        and (broken := fields_change_problems(record_type=record_type, fields=prepared))
    ):
        errors["fields"] = broken
    if errors:
        raise ValidationError(errors)
    retyped = prepared is not None and any(
        field.pk is not None and field.type != stored_types.get(field.pk) for field in prepared
    )
    record_type.save()
    if prepared is not None:
        added = [field.name for field in prepared if field.pk is None]
        for field in prepared:
            field.record_type = record_type
            field.save()
        removed = record_type.fields.exclude(pk__in=[field.pk for field in prepared])
        deleted = list(removed.values_list("name", flat=True))
        removed.delete()
        if not creating:  # a new table has no values to follow its fields
            field_names_changed(record_type=record_type, deleted=deleted, added=added)
    if retyped:
        fields_retyped(record_type=record_type)
    return record_type


def fields_change_problems(*, record_type: RecordType, fields: list[RecordField]) -> list[str]:
    """What a change leaving the record type with `fields` would break elsewhere (a view
    filtering, ordering or showing a field removed or renamed): a message for each."""
    return [
        message
        for _receiver, messages in signals.fields_changing.send(
            sender=RecordType, record_type=record_type, fields=fields
        )
        for message in messages or ()
    ]


def park_field_names(*, field_ids: list[int]) -> None:
    """Give these fields names no field can have (they start with a space) until the
    caller's transaction saves their new names or deletes them."""
    if field_ids:
        RecordField.objects.filter(pk__in=field_ids).update(
            name=Concat(Value(" parked "), Cast("pk", CharField()))
        )


def field_names_changed(
    *,
    record_type: RecordType,
    deleted: Collection[str] = (),
    renamed: Mapping[str, str] = MappingProxyType({}),
    added: Collection[str] = (),
) -> None:
    """The stored values follow a change of the record type's fields, in the caller's
    transaction: a deleted field's values are deleted, a renamed field's move to its new
    name (two fields may swap names), and a new field starts empty (no value left under its
    name by an older deletion shows). Writes wait meanwhile (locks)."""
    # A new field's name that no record holds needs nothing: no table lock for it.
    stored = Record.objects.filter(record_type=record_type)
    added = [
        name
        for name in added
        if not _plain_json_key(name) or stored.filter(data__has_key=name).exists()
    ]
    if not (deleted or renamed or added):
        return
    locks.hold_for_retype(Record._meta.db_table)
    names = {*deleted, *renamed, *renamed.values(), *added}
    if connection.vendor != "postgresql" and not all(map(_plain_json_key, names)):
        _change_values_one_by_one(record_type, deleted, renamed, added)
        return
    # Through names no field can have (they start with a space), so that swapping two
    # names loses nothing.
    parked = {old: f" renaming {index}" for index, old in enumerate(renamed)}
    with connection.cursor() as cursor:
        for name in deleted:
            cursor.execute(*_dropped(record_type, name))
        for old, park in parked.items():
            cursor.execute(*_moved(record_type, old, park))
        for old, new in renamed.items():
            cursor.execute(*_dropped(record_type, new))
            cursor.execute(*_moved(record_type, parked[old], new))
        for name in added:
            cursor.execute(*_dropped(record_type, name))


def _plain_json_key(name: str) -> bool:
    """Whether SQLite's JSON path reads `$."name"` as that key: not a name int() reads (a
    list index: "1_0", "-1") nor one with a quote or a backslash, which fields named before
    the rules (models.new_field_name) may have."""
    if '"' in name or "\\" in name:
        return False
    try:
        int(name)
    except ValueError:
        return True
    return False


def _change_values_one_by_one(
    record_type: RecordType,
    deleted: Collection[str],
    renamed: Mapping[str, str],
    added: Collection[str],
) -> None:
    """field_names_changed for names SQLite's JSON paths cannot address: each record read
    and written in Python (the table's writes wait meanwhile all the same)."""
    stored = (
        Record.objects.filter(record_type=record_type)
        .values_list("pk", "data")
        .iterator(chunk_size=2000)
    )
    for pk, data in stored:
        if not isinstance(data, dict):
            continue
        changed = {name: value for name, value in data.items() if name not in deleted}
        moved = {new: changed.pop(old) for old, new in renamed.items() if old in changed}
        for name in (*renamed.values(), *added):
            changed.pop(name, None)
        changed.update(moved)
        if changed != data:
            Record.objects.filter(pk=pk).update(data=changed)


def _moved(record_type: RecordType, old: str, new: str) -> tuple[str, list[Any]]:
    table = connection.ops.quote_name(Record._meta.db_table)
    if connection.vendor == "postgresql":
        return (
            f"UPDATE {table} SET data = (data - %s) || jsonb_build_object(%s, data -> %s) "  # noqa: S608 - ours
            "WHERE record_type_id = %s AND data ? %s",
            [old, new, old, record_type.pk, old],
        )
    at = compile_json_path([old])
    return (
        f"UPDATE {table} SET data = json_set(json_remove(data, %s), %s, json(data -> %s)) "  # noqa: S608 - ours
        "WHERE record_type_id = %s AND json_type(data, %s) IS NOT NULL",
        [at, compile_json_path([new]), at, record_type.pk, at],
    )


def _dropped(record_type: RecordType, name: str) -> tuple[str, list[Any]]:
    table = connection.ops.quote_name(Record._meta.db_table)
    if connection.vendor == "postgresql":
        return (
            f"UPDATE {table} SET data = data - %s WHERE record_type_id = %s AND data ? %s",  # noqa: S608 - ours
            [name, record_type.pk, name],
        )
    at = compile_json_path([name])
    return (
        f"UPDATE {table} SET data = json_remove(data, %s) "  # noqa: S608 - ours
        "WHERE record_type_id = %s AND json_type(data, %s) IS NOT NULL",
        [at, record_type.pk, at],
    )


def fields_retyped(*, record_type: RecordType) -> None:
    """A field's type changed (the API or the admin saved it): drop the ordering indexes that
    cast the old type, which would refuse every value of the new one (found by an outside
    probe), and let the views ordered by it build theirs again."""
    indexes.drop_ordering_indexes(record_type)
    signals.fields_retyped.send(sender=RecordType, record_type=record_type)


def _prepare_fields(
    record_type: RecordType, fields: list[tuple[int, dict[str, Any]]], errors: dict[str, Any]
) -> list[RecordField]:
    """The record type's fields as the document has them, validated, not yet saved."""
    current = {field.name: field for field in record_type.fields.all()} if record_type.pk else {}
    prepared = []
    for position, (index, values) in enumerate(fields):
        field = current.get(values["name"]) or RecordField(record_type=record_type)
        for name, value in values.items():
            setattr(field, name, value)
        field.position = position
        try:
            # Names are unique within the document already; the constraint needs a saved
            # record type.
            field.full_clean(exclude=["record_type"], validate_constraints=False)
            if field.pk is None:
                _check_new_name(field.name)
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                errors[f"fields[{index}].{name}"] = messages
        prepared.append(field)
    return prepared


def _check_new_name(name: str) -> None:
    try:
        new_field_name(name)
    except ValidationError as exc:
        raise ValidationError({"name": exc.messages}) from None


@transaction.atomic
def empty_record_type(*, record_type: RecordType) -> int:
    """Delete every record of the record type (its definition stays); returns how many."""
    deleted, _ = Record.objects.filter(record_type=record_type).delete()
    return deleted
