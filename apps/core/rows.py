"""INSERT model instances, and read one by its primary key, with the statement built once
per model and database.

Every sync call records its run (an Execution of ~45 columns and a StepRun per step); the
ORM compiled the same INSERT column by column on every call, about a fifth of a greeting
call (BENCHMARKS.md, "Hot path"). `insert` writes the same values (each field's
`get_db_prep_save`, `auto_now_add` and `auto_now` stamped when unset) in one statement.
No signals are sent and no primary key is read back: use it only for models that have
no signal receivers and whose primary key is set in Python or not needed afterwards.

Likewise a worker read, claimed and settled each run it was given with statements the ORM
compiled anew every time (~0.55 ms of a run's ~2.3 ms): `by_pk` reads a row as
`get(pk=…)` does, each column through the converters the ORM applies; `update` changes a
row by primary key as `filter(pk=…, **where).update(**values)` does.
"""

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from django.db import connections, router
from django.db.models import Field, Model
from django.db.models.expressions import Col
from django.utils import timezone

M = TypeVar("M", bound=Model)


@lru_cache(maxsize=64)
def _statement(model: type[Model], alias: str) -> tuple[str, tuple[Field, ...]]:
    quote = connections[alias].ops.quote_name
    fields = tuple(
        field
        for field in model._meta.concrete_fields
        if not (field.primary_key and getattr(field, "db_returning", False))  # AutoField
    )
    columns = ", ".join(quote(field.column) for field in fields)
    table = quote(model._meta.db_table)
    return f"INSERT INTO {table} ({columns}) VALUES ", fields  # noqa: S608 - quoted names


def _stamp(instance: Model, field: Field, now) -> None:
    if getattr(field, "auto_now", False) or (
        getattr(field, "auto_now_add", False) and getattr(instance, field.attname) is None
    ):
        setattr(instance, field.attname, now)


def prepared(instance: Model, fields: Sequence[Field], connection, now) -> list:
    """The parameters of `instance`'s row for `fields`: `auto_now_add` and `auto_now`
    stamped with `now` when unset, each value as `get_db_prep_save` makes it."""
    params = []
    for field in fields:
        _stamp(instance, field, now)
        params.append(field.get_db_prep_save(getattr(instance, field.attname), connection))
    return params


def written(instance: Model, alias: str) -> None:
    """Mark an instance inserted by hand as saved, as Model.save() would."""
    instance._state.adding = False
    instance._state.db = alias


def insert(instances: Sequence[Model]) -> None:
    """One INSERT of `instances` (all of one model); each is then no longer `adding`."""
    if not instances:
        return
    model = type(instances[0])
    connection = connections[router.db_for_write(model)]
    head, fields = _statement(model, connection.alias)
    now = timezone.now()
    params = []
    for instance in instances:
        params += prepared(instance, fields, connection, now)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    with connection.cursor() as cursor:
        cursor.execute(head + ", ".join([row] * len(instances)), params)
    for instance in instances:
        written(instance, connection.alias)


@dataclass(frozen=True)
class _Reader:
    sql: str
    attnames: tuple[str, ...]
    # Per column: its expression and the converters the ORM would apply, in its order
    # (the backend's, then the field's from_db_value).
    columns: tuple[tuple[Col, tuple[Any, ...]], ...]


# Converters are bound to a connection, and Django's connections are per thread.
_readers = threading.local()


def _reader(model: type[Model], connection) -> _Reader:
    cache = _readers.__dict__.setdefault("by_model", {})
    reader = cache.get((model, connection.alias))
    if reader is None:
        quote = connection.ops.quote_name
        table = model._meta.db_table
        fields = model._meta.concrete_fields
        columns = ", ".join(quote(field.column) for field in fields)
        pk = quote(model._meta.pk.column)
        sql = f"SELECT {columns} FROM {quote(table)} WHERE {pk} = %s"  # noqa: S608 - quoted names
        expressions = [field.get_col(table) for field in fields]
        reader = cache[(model, connection.alias)] = _Reader(
            sql=sql,
            attnames=tuple(field.attname for field in fields),
            columns=tuple(
                (
                    col,
                    tuple(
                        connection.ops.get_db_converters(col) + col.get_db_converters(connection)
                    ),
                )
                for col in expressions
            ),
        )
    return reader


def by_pk(model: type[M], pk) -> M | None:
    """The `model` instance whose primary key is `pk`, as `model.objects.get(pk=pk)` reads
    it (deferring nothing, relations not loaded), or None."""
    alias = router.db_for_read(model)
    connection = connections[alias]
    reader = _reader(model, connection)
    with connection.cursor() as cursor:
        cursor.execute(reader.sql, [model._meta.pk.get_db_prep_value(pk, connection)])
        row = cursor.fetchone()
    if row is None:
        return None
    values = []
    for value, (col, converters) in zip(row, reader.columns, strict=True):
        for converter in converters:
            value = converter(value, col, connection)
        values.append(value)
    return model.from_db(alias, reader.attnames, values)


@lru_cache(maxsize=64)
def _update_statement(
    model: type[Model], alias: str, names: tuple[str, ...], where: tuple[str, ...]
) -> tuple[str, tuple[Field, ...], tuple[Field, ...]]:
    quote = connections[alias].ops.quote_name
    meta = model._meta
    fields = tuple(meta.get_field(name) for name in names)
    conditions = (meta.pk, *(meta.get_field(name) for name in where))
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    matches = " AND ".join(f"{quote(field.column)} = %s" for field in conditions)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {matches}"  # noqa: S608
    return sql, fields, conditions


def update(model: type[Model], pk, values: dict[str, Any], /, **where) -> int:
    """Set `values` on the row of `model` whose primary key is `pk` if its columns equal
    `where`: the rows matched, 0 or 1, as `filter(pk=pk, **where).update(**values)` for
    plain stored values. No signals and no auto_now, as the ORM's update(); each value as
    `get_db_prep_save` makes it. Narrower than the ORM: keys are field names or attnames
    (`flow_id`, not a Flow instance as `flow`), no expressions, and None never matches in
    `where` (it is compared with =)."""
    if None in where.values():
        raise ValueError("rows.update compares with =; None never matches")
    connection = connections[router.db_for_write(model)]
    sql, fields, conditions = _update_statement(
        model, connection.alias, tuple(values), tuple(where)
    )
    params = [
        field.get_db_prep_save(value, connection)
        for field, value in zip(fields, values.values(), strict=True)
    ]
    params += [
        field.get_db_prep_value(value, connection)
        for field, value in zip(conditions, (pk, *where.values()), strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
