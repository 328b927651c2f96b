"""A record type's field types, held still while a write is validated against them.

On PostgreSQL, a write takes the records table's ROW EXCLUSIVE lock (which its INSERT or
UPDATE takes anyway) and reads its fields' types in the same round trip, in a second
statement, whose snapshot follows the lock (services.fields_for_write); a field's type
change takes SHARE ROW EXCLUSIVE on the table before it looks at the stored values
(hold_for_retype). So a write validated against the old types commits before the change
looks (and the change is refused naming it), or waits for the change and is validated
against the new types. Without it both were accepted under concurrent writes, leaving
values the type does not allow, and every Query() of the field a 500 (an outside probe).

Table locks, not a lock per record type: the change's transaction drops the record type's
ordering indexes too, which locks the whole table, and a write holding the table while it
waited for a per-type lock deadlocked with it (the review). A change of type makes every
write wait while it checks the stored values; changes of type are rare. SQLite lets one
writer in at a time already.
"""

from django.db import connection


def hold_for_retype(records_table: str) -> None:
    """Before a field's type change looks at the stored values: until the transaction ends,
    no write validates against the types (SHARE ROW EXCLUSIVE conflicts with writers and
    with itself, so two changes of type take turns)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            table = connection.ops.quote_name(records_table)
            cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")


def types_for_write(records_table: str, fields_table: str, record_type_id: int) -> str:
    """PostgreSQL: the record type's field types and names ("id:type:name,…" by id) read
    after the records table's ROW EXCLUSIVE lock is held, in one round trip: two statements
    with no parameters (names of ours, an integer), the second with its snapshot taken
    after the lock. A rename holds the table as a change of type does (hold_for_retype)."""
    quote = connection.ops.quote_name
    statements = (
        f"LOCK TABLE {quote(records_table)} IN ROW EXCLUSIVE MODE; "  # noqa: S608 - ours only
        "SELECT string_agg(id || ':' || type || ':' || name, ',' ORDER BY id) "
        f"FROM {quote(fields_table)} WHERE record_type_id = {int(record_type_id):d}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statements)
        cursor.nextset()
        (signature,) = cursor.fetchone()
    return signature or ""
