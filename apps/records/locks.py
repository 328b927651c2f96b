"""A record type's field types, held still while a write is validated against them.

On PostgreSQL, a write takes the record type's advisory lock shared and reads its fields'
types in the same round trip (services.fields_for_write); a field's type change takes it
exclusively before it looks at the stored values (hold_for_retype). So a write validated
against the old types commits before the change looks (and the change is refused naming
it), or waits for the change and is validated against the new types. Without it both were
accepted under concurrent writes, leaving values the type does not allow, and every
Query() of the field a 500 (an outside probe). SQLite lets one writer in at a time already.
"""

import hashlib

from django.db import connection


def key(record_type_id: int) -> int:
    digest = hashlib.blake2b(f"record-type-fields:{record_type_id}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def hold_for_retype(record_type_id: int) -> None:
    """Before a field's type change looks at the stored values: until the transaction ends,
    no write validates against the types."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key(record_type_id)])
