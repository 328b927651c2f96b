"""A GIN index on Record.data, on PostgreSQL only.

The selectors filter for equality with JSON containment (`data @> '{"Rating": "Hot"}'`),
which this index serves; jsonb_path_ops is smaller and faster than the default operator
class and supports exactly `@>`. SQLite has no GIN indexes, and a GinIndex in
Meta.indexes would make the SQLite migration fail, so the index is created here, by
vendor, and is not part of the model state.
"""

from django.db import migrations

INDEX = "records_record_data_gin"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON records_record USING gin (data jsonb_path_ops)"
        )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("records", "0001_initial")]

    operations = [migrations.RunPython(create_index, drop_index, elidable=False)]
