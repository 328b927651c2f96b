"""Reads for data tables: filtered, ordered pages of records (keyset paging, incremental
sync by submission id) and the record and recordType documents.

Values live in one JSON column, so every comparison names its type: numbers and
integers are cast to numbers (9 < 10, not "9" > "10"), dates and datetimes to dates and
timestamps, on SQLite as on PostgreSQL. On PostgreSQL, equality uses JSON containment
(`data @> {"Rating": "Hot"}`), which the GIN index on `data` serves.
"""

import json
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import reduce
from typing import Any

from django.db import connections
from django.db.models import (
    BigIntegerField,
    BooleanField,
    DateField,
    DateTimeField,
    F,
    FloatField,
    JSONField,
    Q,
    QuerySet,
    TextField,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform, KeyTransform, compile_json_path
from django.db.models.functions import Cast
from django.utils.dateparse import parse_date, parse_datetime

from apps.flows import crypto
from apps.flows.models import Connection, Export, Import
from apps.flows.pipeline import as_id
from apps.records.documents_sql import DocumentText
from apps.records.models import SYSTEM_FIELDS, Record, RecordField, RecordType
from apps.records.validation import FieldSpec, Invalid, as_spec, format_datetime, parse_parameter

Type = RecordField.Type
OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "contains", "in", "isnull")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Values one `in` filter may list: each is a term of the WHERE clause, and SQLite refuses
# an expression deeper than 1,000 (that was a 503 "database unavailable").
MAX_IN_VALUES = 500
MAX_FILTERS = 100  # each a term too: 1,100 made SQLite's expression too deep (a 503)
TEXTUAL = (Type.TEXT, Type.LONG_TEXT, Type.EMAIL, Type.URL, Type.CHOICE)
ORDERED = (*TEXTUAL, Type.NUMBER, Type.INTEGER, Type.DATE, Type.DATETIME, Type.BOOLEAN)
# Containment (`@>`) is equality for these types as they are stored (validation.py).
CONTAINABLE = (*TEXTUAL, Type.NUMBER, Type.INTEGER, Type.DATE, Type.DATETIME, Type.BOOLEAN)


class InvalidQuery(Invalid, ValueError):
    """A filter, ordering or cursor that does not fit the record type; `errors` maps
    "filters", "ordering", "after", "since" or "limit" to a message."""


@dataclass(frozen=True)
class Key:
    """Something to filter or order by: a field's value, cast to its type, or a column."""

    name: str
    type: str
    expression: Any
    system: bool = False
    nullable: bool = True


# System fields: (column, type, nullable).
SYSTEM_KEYS = {
    "RecordID": ("pk", Type.INTEGER, False),
    "SubmissionId": ("submission_id", Type.INTEGER, False),
    "CreatedOn": ("created_at", Type.DATETIME, False),
    "ModifiedOn": ("modified_at", Type.DATETIME, False),
    "CreatedBy": ("created_by__username", Type.TEXT, True),
    "ModifiedBy": ("modified_by__username", Type.TEXT, True),
}
UNIQUE_KEYS = ("RecordID", "SubmissionId")


class ValueOf(KeyTextTransform):
    """A field's value as an SQL scalar: NULL for a missing key and for JSON null alike.

    On PostgreSQL that is `data ->> 'name'`. Django's key transform on SQLite answers
    'null', 'true' and 'false' as text (to tell them apart in JSON lookups); a plain
    JSON_EXTRACT gives NULL, 1 and 0, which casts to numbers and booleans correctly.
    """

    def as_sqlite(self, compiler, connection):
        lhs, params, keys = self.preprocess_lhs(compiler, connection)
        return f"JSON_EXTRACT({lhs}, %s)", (*params, compile_json_path(keys))


def _value_expression(spec: FieldSpec):
    text = ValueOf(spec.name, "data")
    casts = {
        Type.NUMBER: FloatField,
        Type.INTEGER: BigIntegerField,
        Type.BOOLEAN: BooleanField,
        Type.DATE: DateField,
        Type.DATETIME: DateTimeField,
    }
    if spec.type in casts:
        return Cast(text, casts[spec.type]())
    if spec.type == Type.JSON:
        return KeyTransform(spec.name, "data")
    # Cast to text, so that lookups are those of text, not of JSON keys (which would
    # compare with a JSON-encoded right-hand side).
    return Cast(text, TextField())


def _key(name: Any, fields: dict[str, FieldSpec], where: str) -> Key:
    if name in SYSTEM_KEYS:
        column, kind, nullable = SYSTEM_KEYS[name]
        return Key(name, kind, F(column), system=True, nullable=nullable)
    spec = fields.get(name) if isinstance(name, str) else None
    if spec is None:
        known = ", ".join([*fields, *SYSTEM_KEYS])
        raise InvalidQuery({where: f"{name!r} is not a field; the fields are: {known}."})
    return Key(name, spec.type, _value_expression(spec))


def _operand(key: Key, value: Any):
    """A normalised value as the right-hand side of a comparison with `key`: the same
    cast on both sides, so SQLite compares timestamps as timestamps too."""
    if key.type == Type.DATETIME:
        if isinstance(value, str):
            value = parse_datetime(value)
        if key.system:
            return value
        return Cast(Value(format_datetime(value)), DateTimeField())
    if key.type == Type.DATE:
        text = value.isoformat() if isinstance(value, date) else value
        return Cast(Value(text), DateField())
    if key.type == Type.NUMBER:
        return Value(float(value), FloatField())
    if key.type == Type.BOOLEAN:
        return Value(bool(value), BooleanField())
    if key.type in TEXTUAL:
        return Value(value, TextField())
    return value


class _Filters:
    """Builds the WHERE clause of one query; values are aliased, so each is cast once."""

    def __init__(self, queryset: QuerySet, fields: dict[str, FieldSpec]):
        self.queryset = queryset
        self.fields = fields
        self.vendor = connections[queryset.db].vendor
        self.aliases: dict[str, str] = {}

    def alias(self, key: Key) -> str:
        if key.name not in self.aliases:
            alias = f"_k{len(self.aliases)}"
            self.queryset = self.queryset.alias(**{alias: key.expression})
            self.aliases[key.name] = alias
        return self.aliases[key.name]

    def parse(self, key: Key, raw: Any, where: str) -> Any:
        spec = self.fields.get(key.name) if not key.system else None
        spec = spec or FieldSpec(name=key.name, type=key.type)
        try:
            value = parse_parameter(spec, raw)
        except ValueError as exc:
            raise InvalidQuery({where: f"{key.name}: {exc}"}) from None
        if value is None:
            raise InvalidQuery({where: f"{key.name}: a value is needed (or use isnull)."})
        return value

    def has(self, key: Key, choice: str) -> Q:
        """A multiple-choice field holds `choice`."""
        if self.vendor == "postgresql":
            return Q(data__contains={key.name: [choice]})
        path = f"$.{json.dumps(key.name)}"
        # SQLite has no JSON containment: look for the choice among the list's items.
        member = RawSQL(
            'EXISTS (SELECT 1 FROM json_each("records_record"."data", %s) '
            "WHERE json_each.value = %s)",
            (path, choice),
            output_field=BooleanField(),
        )
        return Q(member)

    def equal(self, key: Key, value: Any) -> Q:
        if key.type == Type.MULTI_CHOICE:
            return self.has(key, value[0])
        if key.type == Type.JSON:
            operand = Value(value, JSONField())
            return Q(key.expression.get_lookup("exact")(KeyTransform(key.name, "data"), operand))
        if not key.system and self.vendor == "postgresql" and key.type in CONTAINABLE:
            return Q(data__contains={key.name: value})
        return Q(**{self.alias(key): _operand(key, value)})

    def is_null(self, key: Key) -> Q:
        if not key.nullable:
            return Q(pk__in=[])
        if key.type == Type.JSON:  # JSON null or missing, not a JSON object or list
            scalar = Cast(ValueOf(key.name, "data"), TextField())
            key = Key(f"{key.name} (scalar)", Type.TEXT, scalar)
        return Q(**{f"{self.alias(key)}__isnull": True})

    def condition(self, field: Any, op: Any, raw: Any, where: str) -> Q:
        key = _key(field, self.fields, where)
        if op not in OPS:
            raise InvalidQuery({where: f"{op!r} is not an operator; they are: {', '.join(OPS)}."})
        if op == "isnull":
            try:
                flag = parse_parameter(FieldSpec(name="isnull", type=Type.BOOLEAN), raw)
            except ValueError:
                flag = None
            if not isinstance(flag, bool):
                raise InvalidQuery({where: "isnull takes true or false."})
            return self.is_null(key) if flag else ~self.is_null(key)
        if op == "in":
            values = raw.split(",") if isinstance(raw, str) else raw
            if not isinstance(values, list | tuple):
                raise InvalidQuery({where: "in takes a list of values."})
            if len(values) > MAX_IN_VALUES:
                raise InvalidQuery(
                    {where: f"in takes at most {MAX_IN_VALUES} values, not {len(values)}."}
                )
            condition = Q(pk__in=[])
            for value in values:
                condition |= self.equal(key, self.parse(key, value, where))
            return condition
        if op in ("eq", "ne"):
            condition = self.equal(key, self.parse(key, raw, where))
            return condition if op == "eq" else ~condition | self.is_null(key)
        if op == "contains":
            if key.type == Type.MULTI_CHOICE:
                return self.equal(key, self.parse(key, raw, where))
            if key.type not in TEXTUAL:
                raise InvalidQuery({where: f"contains is for text; {key.name} is {key.type}."})
            if not isinstance(raw, str) or not raw:
                raise InvalidQuery({where: "contains takes some text."})
            return Q(**{f"{self.alias(key)}__icontains": raw})
        if key.type not in ORDERED or key.type == Type.BOOLEAN:
            raise InvalidQuery({where: f"{op} does not compare {key.type} values."})
        return Q(**{f"{self.alias(key)}__{op}": _operand(key, self.parse(key, raw, where))})


def _specs(fields: Iterable[Any]) -> dict[str, FieldSpec]:
    return {spec.name: spec for spec in map(as_spec, fields)}


def filter_records(
    queryset: QuerySet, fields: Iterable[Any], filters: Iterable[Sequence[Any]]
) -> QuerySet:
    """Records of `queryset` that match every (field, op, value) of `filters`.

    `field` is a field name or a system field (RecordID, SubmissionId, CreatedOn,
    ModifiedOn, CreatedBy, ModifiedBy); `op` one of OPS. Values may be text, as from a
    URL ("10", "true", "Hot,Warm" for `in`). `ne` also matches empty values.
    """
    filters = list(filters)
    if len(filters) > MAX_FILTERS:
        raise InvalidQuery({"filters": f"At most {MAX_FILTERS} filters, not {len(filters)}."})
    builder = _Filters(queryset, _specs(fields))
    conditions = []
    for index, item in enumerate(filters):
        where = f"filters[{index}]"
        if not isinstance(item, list | tuple) or len(item) != 3:
            raise InvalidQuery({where: "Expected (field, op, value)."})
        conditions.append(builder.condition(*item, where))
    queryset = builder.queryset
    for condition in conditions:
        queryset = queryset.filter(condition)
    return queryset


# --- Keyset pages ---------------------------------------------------------------------


@dataclass(frozen=True)
class RecordPage:
    """One page of record documents. `next_cursor` is None on the last page;
    `last_submission_id` is the highest SubmissionId seen so far (or `since`): the next
    sync's `since`."""

    text: str  # the JSON array of the record documents, as the database wrote it
    next_cursor: str | None
    last_submission_id: int | None

    @property
    def documents(self) -> list[dict[str, Any]]:
        return json.loads(self.text)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"dt"}:
        parsed = parse_datetime(value["dt"])
    elif isinstance(value, dict) and set(value) == {"d"}:
        parsed = parse_date(value["d"])
    else:
        return value
    if parsed is None:
        raise ValueError("bad date")
    return parsed


def _signature(keys: list[tuple[Key, bool]]) -> list[str]:
    return [f"{'-' if descending else ''}{key.name}" for key, descending in keys]


def _cursor(keys: list[tuple[Key, bool]], values: list[Any]) -> str:
    """The position after a page, encrypted: it holds the values of the ordering fields,
    which a view may not show, and what the caller cannot read it cannot forge."""
    payload = {"o": _signature(keys), "v": [_encode(value) for value in values]}
    return crypto.encrypt_json(payload)


def _cursor_values(cursor: str, keys: list[tuple[Key, bool]]) -> list[Any]:
    invalid = InvalidQuery({"after": "Not a cursor of this query; start again without it."})
    try:
        payload = crypto.decrypt_json(cursor)
        values = [_decode(value) for value in payload["v"]]
    except (ValueError, TypeError, KeyError):
        raise invalid from None
    if payload.get("o") != _signature(keys) or len(values) != len(keys):
        raise invalid
    return values


def _after(keys: list[tuple[Key, bool]], aliases: list[str], values: list[Any]) -> Q:
    """Rows strictly after `values` in the order of `keys`. Empty values sort last going
    up and first going down (as the ORDER BY says), so they need their own terms."""
    terms = []  # one per key: equal on the keys before it, beyond on it
    equal_so_far = Q()
    for (key, descending), alias, value in zip(keys, aliases, values, strict=True):
        if value is None:
            beyond = Q(**{f"{alias}__isnull": False}) if descending else None
            same = Q(**{f"{alias}__isnull": True})
        else:
            operand = _operand(key, value)
            beyond = Q(**{f"{alias}__{'lt' if descending else 'gt'}": operand})
            if key.nullable and not descending:
                beyond |= Q(**{f"{alias}__isnull": True})
            same = Q(**{alias: operand})
        if beyond is not None:  # nothing sorts after an empty value going up
            terms.append(equal_so_far & beyond)
        equal_so_far &= same
    # The usual cursor (RecordID alone) is one term: no OR, nothing empty to compile.
    return reduce(operator.or_, terms) if terms else Q(pk__in=[])


def ordering_keys(
    specs: dict[str, FieldSpec], ordering: Iterable[Sequence[str]]
) -> list[tuple[Key, bool]]:
    """(key, descending) pairs of an ordering, RecordID last to break ties."""
    keys: list[tuple[Key, bool]] = []
    for index, item in enumerate(ordering or [("RecordID", "asc")]):
        where = f"ordering[{index}]"
        if not isinstance(item, list | tuple) or len(item) != 2 or item[1] not in ("asc", "desc"):
            raise InvalidQuery({where: 'Expected (field, "asc" or "desc").'})
        key = _key(item[0], specs, where)
        if key.type not in ORDERED:
            raise InvalidQuery({where: f"Records cannot be ordered by a {key.type} field."})
        keys.append((key, item[1] == "desc"))
    if keys[-1][0].name not in UNIQUE_KEYS:
        keys.append((_key("RecordID", specs, "ordering"), False))
    return keys


def query_records(
    record_type: RecordType,
    *,
    filters: Iterable[Sequence[Any]] = (),
    ordering: Iterable[Sequence[str]] = (),
    since: int | None = None,
    after: str | None = None,
    limit: int = DEFAULT_LIMIT,
    fields: Iterable[Any] | None = None,
    shown: Iterable[Any] | None = None,
) -> RecordPage:
    """A page of the record type's records matching `filters` (see filter_records), as
    record documents of the `shown` fields (all of `fields` when not given).

    `ordering`: (field or system field, "asc"|"desc") pairs, RecordID ascending when
    empty; ties are broken by RecordID. Paging is by keyset: `after` is the previous
    page's `next_cursor`, so rows inserted meanwhile never shift a page (no OFFSET).
    `since`: incremental sync — only records created or updated after that SubmissionId,
    by SubmissionId ascending (it overrides `ordering`).

    One query; the database writes the documents (documents_sql).
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidQuery({"limit": f"Expected a number from 1 to {MAX_LIMIT}."})
    fields = list(record_type.fields.all() if fields is None else fields)
    specs = _specs(fields)
    queryset = filter_records(
        Record.objects.filter(record_type=record_type), specs.values(), filters
    )
    if since is not None:
        if isinstance(since, bool) or not isinstance(since, int) or since < 0:
            raise InvalidQuery({"since": "Expected a SubmissionId (0 or more)."})
        queryset = queryset.filter(submission_id__gt=since)
        ordering = [("SubmissionId", "asc")]
    keys = ordering_keys(specs, ordering)
    aliases = [f"_o{index}" for index in range(len(keys))]
    queryset = queryset.annotate(
        **{alias: key.expression for alias, (key, _) in zip(aliases, keys, strict=True)}
    ).order_by(
        *(
            F(alias).desc(nulls_first=True) if descending else F(alias).asc(nulls_last=True)
            for alias, (_, descending) in zip(aliases, keys, strict=True)
        )
    )
    if after:
        queryset = queryset.filter(_after(keys, aliases, _cursor_values(after, keys)))
    shape = _shape(fields if shown is None else shown)
    queryset = queryset.annotate(_document=DocumentText(shape))
    rows = list(queryset.values_list("_document", "submission_id", *aliases)[: limit + 1])
    rows, more = rows[:limit], len(rows) > limit
    next_cursor = _cursor(keys, list(rows[-1][2:])) if more else None
    seen = [row[1] for row in rows]
    highest = max([*seen, *([since] if since is not None else [])], default=None)
    return RecordPage(
        text="[" + ",".join(row[0] for row in rows) + "]",
        next_cursor=next_cursor,
        last_submission_id=highest,
    )


# --- Documents ------------------------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    return format_datetime(value) if value is not None else None


def _shown(kind: str, value: Any) -> Any:
    """A stored value as record documents show it: choices as {"Selection": …}."""
    if value is None:
        return None
    if kind == Type.CHOICE:
        return {"Selection": value}
    if kind == Type.MULTI_CHOICE:
        return [{"Selection": choice} for choice in value]
    return value


def _shape(fields: Iterable[Any]) -> list[tuple[str, str]]:
    return [(spec.name, spec.type) for spec in map(as_spec, fields)]


def record_document(record: Record, fields: Iterable[Any]) -> dict[str, Any]:
    """The record object of Query() and the records API: system fields, then every
    field's value (null when it has none), in the record type's field order. (A page's
    documents are written by the database, the same way: documents_sql.)"""
    document: dict[str, Any] = {
        "RecordID": record.pk,
        "CreatedBy": record.created_by.username if record.created_by else None,
        "CreatedOn": iso(record.created_at),
        "ModifiedBy": record.modified_by.username if record.modified_by else None,
        "ModifiedOn": iso(record.modified_at),
        "SubmissionId": record.submission_id,
    }
    for name, kind in _shape(fields):
        document[name] = _shown(kind, record.data.get(name))
    return document


def record_type_document(record_type: RecordType) -> dict[str, Any]:
    """The recordType resource of the management API (Celigo conventions)."""
    return {
        "_id": str(record_type.pk),
        "name": record_type.name,
        "description": record_type.description,
        "_integrationId": str(record_type.application_id),
        "fields": [
            {
                "name": field.name,
                "type": field.type,
                "required": field.required,
                **({"choices": list(field.choices)} if field.choices else {}),
                **({"default": field.default} if field.default is not None else {}),
            }
            for field in record_type.fields.all()
        ],
        "createdAt": iso(record_type.created_at),
        "lastModified": iso(record_type.modified_at),
    }


__all__ = [
    "OPS",
    "SYSTEM_FIELDS",
    "InvalidQuery",
    "RecordPage",
    "filter_records",
    "query_records",
    "record_document",
    "record_type_document",
]


def steps_using(record_type: RecordType) -> list[Export | Import]:
    """The exports and imports that read or write the record type (through a connection
    of the Flowsite data tables kind: `records._recordTypeId`, read as the run reads it,
    so "5", 5 and " 05" all name record type 5)."""
    return [
        step
        for model in (Export, Import)
        for step in model.objects.filter(connection__type=Connection.Type.RECORDS)
        if isinstance(step.records, dict)
        and as_id(step.records.get("_recordTypeId")) == record_type.pk
    ]
