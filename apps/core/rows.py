"""INSERT model instances with the statement built once per model and database.

Every sync call records its run (an Execution of ~45 columns and a StepRun per step); the
ORM compiled the same INSERT column by column on every call, about a fifth of a greeting
call (BENCHMARKS.md, "Hot path"). This writes the same values (each field's
`get_db_prep_save`, `auto_now_add` and `auto_now` stamped when unset) in one statement.
No signals are sent and no primary key is read back: use it only for models that have
no signal receivers and whose primary key is set in Python or not needed afterwards.
"""

from collections.abc import Sequence
from functools import lru_cache

from django.db import connections, router
from django.db.models import Field, Model
from django.utils import timezone


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
