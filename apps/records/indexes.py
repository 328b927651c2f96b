"""Indexes for the orderings views use, on PostgreSQL.

A view ordered by a field (`All Leads` by Company) reads `ORDER BY data->>'Company', id`:
without an index PostgreSQL sorts the whole table for every page (~600 ms at a million
records). Saving such a view builds a partial expression index for its record type whose
columns are exactly the ordering query_records writes, so a page is an index scan.
SQLite sorts in-process and gets none. Orderings by a date or datetime field get none
either (PostgreSQL will not index a text→date cast); they still sort correctly.
"""

import hashlib

from django.db import DatabaseError, connection

from apps.records.models import Record, RecordField, RecordType
from apps.records.selectors import _specs, ordering_keys

Type = RecordField.Type


def ordering_index_sql(record_type: RecordType, ordering: list) -> tuple[str, str] | None:
    """(index name, CREATE INDEX statement) for an ordering, None when a plain column
    ordering already has an index (RecordID, SubmissionId) or on another database."""
    if connection.vendor != "postgresql" or not ordering:
        return None
    keys = ordering_keys(_specs(record_type.fields.all()), [tuple(item) for item in ordering])
    if all(key.system and key.name in ("RecordID", "SubmissionId") for key, _ in keys):
        return None
    query = Record.objects.filter(record_type=record_type).query
    compiler = query.get_compiler(connection=connection)
    columns = []
    for key, descending in keys:
        if key.name in ("CreatedBy", "ModifiedBy"):
            return None  # a joined column: no index on this table can serve it
        if key.type in (Type.DATE, Type.DATETIME) and not key.system:
            return None  # text→date casts depend on DateStyle: PostgreSQL cannot index them
        sql, params = key.expression.resolve_expression(query).as_sql(compiler, connection)
        expression = connection.ops.compose_sql(sql, params)
        columns.append(f"({expression}) {'DESC NULLS FIRST' if descending else 'ASC NULLS LAST'}")
    signature = hashlib.sha256("|".join(columns).encode()).hexdigest()[:12]
    name = f"records_order_{record_type.pk}_{signature}"
    table = connection.ops.quote_name(Record._meta.db_table)
    statement = (
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({', '.join(columns)}) "
        f"WHERE record_type_id = {int(record_type.pk)}"
    )
    return name, statement


def ensure_ordering_index(record_type: RecordType, ordering: list) -> str | None:
    """Build the ordering's index if it is missing (outside a transaction: CONCURRENTLY
    does not block writers); returns its name. A build that fails leaves no invalid index
    behind (IF NOT EXISTS would then skip every later build)."""
    found = ordering_index_sql(record_type, ordering)
    if found is None:
        return None
    name, statement = found
    with connection.cursor() as cursor:
        try:
            cursor.execute(statement)
        except DatabaseError:
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {connection.ops.quote_name(name)}")
            raise
    return name


def drop_ordering_indexes(record_type: RecordType) -> None:
    """Drop the record type's ordering indexes (a field's type changed: an index casting its
    values to a number would refuse every text written after; found by an outside probe).
    services.fields_retyped has the views build theirs again."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname LIKE %s",
            [Record._meta.db_table, f"records\\_order\\_{int(record_type.pk)}\\_%"],
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f"DROP INDEX IF EXISTS {connection.ops.quote_name(name)}")
