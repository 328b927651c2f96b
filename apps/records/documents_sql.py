"""Record documents written by the database: a page of Query() is one query whose rows are
already the JSON text of each record document, so Python decodes no timestamps and no
JSON and encodes nothing (bench: 100 documents took ~2 ms of Python before).

The text is exactly the document `selectors.record_document` builds (a test compares them
for every field type, on SQLite and PostgreSQL): system fields, then each shown field in
order, null when empty, a choice as {"Selection": …}, a multiple choice as a list of
them, timestamps in UTC with milliseconds and `Z` (validation.format_datetime).

Built by concatenating text, not with json_build_object (PostgreSQL caps a function at
100 arguments, 50 fields); field names are always parameters, never SQL.
"""

import json
from typing import Any

from django.db.models import F, Func, TextField
from django.db.models.fields.json import compile_json_path

from apps.records.models import RecordField

Type = RecordField.Type
# The document's system fields, in order, and the columns they come from.
SYSTEM = (
    ("RecordID", "pk"),
    ("CreatedBy", "created_by__username"),
    ("CreatedOn", "created_at"),
    ("ModifiedBy", "modified_by__username"),
    ("ModifiedOn", "modified_at"),
    ("SubmissionId", "submission_id"),
)


class _Dialect:
    """How one database writes each part of a document as JSON text."""

    def integer(self, column: str) -> str:
        return f"CAST({column} AS TEXT)"

    def text(self, column: str) -> str:
        raise NotImplementedError

    def timestamp(self, column: str) -> str:
        raise NotImplementedError

    def at(self, data: str, name: str) -> tuple[str, list[Any]]:
        """The field's value as JSON text (SQL NULL when the key is missing)."""
        raise NotImplementedError

    def value(self, data: str, name: str, kind: str) -> tuple[str, list[Any]]:
        """The field's value as the document shows it, as JSON text."""
        at, params = self.at(data, name)
        if kind == Type.CHOICE:
            sql = (
                f"CASE WHEN COALESCE({at}, 'null') = 'null' THEN 'null' "
                f"""ELSE '{{"Selection":' || {at} || '}}' END"""
            )
            return sql, params * 2
        if kind == Type.MULTI_CHOICE:
            return self.selections(at), params * 2
        return f"COALESCE({at}, 'null')", params

    def selections(self, at: str) -> str:
        """A list of choices as [{"Selection": …}, …], reading `at` twice."""
        raise NotImplementedError


class _PostgreSQL(_Dialect):
    def text(self, column: str) -> str:
        return f"COALESCE(to_json({column})::text, 'null')"

    def timestamp(self, column: str) -> str:
        utc = f"date_trunc('milliseconds', {column} AT TIME ZONE 'UTC')"
        return f"""('"' || to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"')"""

    def at(self, data: str, name: str) -> tuple[str, list[Any]]:
        return f"({data} -> %s)::text", [name]

    def value(self, data: str, name: str, kind: str) -> tuple[str, list[Any]]:
        # On jsonb itself: converting it to text once per use costs more than the rest.
        if kind == Type.CHOICE:
            sql = (
                f"CASE WHEN {data} ->> %s IS NULL THEN 'null' "
                f"""ELSE '{{"Selection":' || ({data} -> %s)::text || '}}' END"""
            )
            return sql, [name, name]
        if kind == Type.MULTI_CHOICE:
            return self.selections(f"({data} -> %s)"), [name, name]
        return super().value(data, name, kind)

    def selections(self, at: str) -> str:
        return (
            f"CASE WHEN jsonb_typeof({at}) = 'array' THEN "
            """(SELECT '[' || COALESCE(string_agg('{"Selection":' || _e.value::text """
            "|| '}', ',' ORDER BY _e.n), '') || ']' "
            f"FROM jsonb_array_elements({at}) WITH ORDINALITY AS _e(value, n)) "
            "ELSE 'null' END"
        )


class _SQLite(_Dialect):
    def text(self, column: str) -> str:
        return f"json_quote({column})"

    def timestamp(self, column: str) -> str:
        # Stored in UTC as "YYYY-MM-DD HH:MM:SS[.ffffff]".
        return (
            f"""('"' || substr({column}, 1, 10) || 'T' || substr({column}, 12, 8) || '.' """
            f"""|| substr(substr({column}, 21) || '000', 1, 3) || 'Z"')"""
        )

    def at(self, data: str, name: str) -> tuple[str, list[Any]]:
        if '"' in name:  # a JSON path cannot name it: SQLite's paths have no escapes
            return f"(SELECT json_quote(value) FROM json_each({data}) WHERE key = %s)", [name]
        return f"({data} -> %s)", [compile_json_path([name])]

    def selections(self, at: str) -> str:
        return (
            f"CASE WHEN json_type({at}) = 'array' THEN "
            """(SELECT '[' || COALESCE(group_concat('{"Selection":' || _e.value """
            "|| '}', ','), '') || ']' FROM (SELECT json_quote(value) AS value "
            f"FROM json_each({at}) ORDER BY key) AS _e) "
            "ELSE 'null' END"
        )


DIALECTS = {"postgresql": _PostgreSQL(), "sqlite": _SQLite()}


class DocumentText(Func):
    """The record document of each row as JSON text, with the fields of `shape`
    ((name, type) pairs, in order)."""

    output_field = TextField()

    def __init__(self, shape: list[tuple[str, str]]):
        super().__init__(*(F(column) for _, column in SYSTEM), F("data"))
        self.shape = shape

    def as_sql(self, compiler, connection, **extra_context) -> tuple[str, list[Any]]:
        dialect = DIALECTS[connection.vendor]
        columns = []
        for expression in self.get_source_expressions():
            sql, params = compiler.compile(expression)
            if params:  # columns only: their SQL is repeated below
                raise ValueError("A document column took parameters.")
            columns.append(sql)
        *system, data = columns
        (pk, created_by, created_at, modified_by, modified_at, submission_id) = system
        pieces = [
            f"""'{{"RecordID":' || {dialect.integer(pk)}""",
            f"""',"CreatedBy":' || {dialect.text(created_by)}""",
            f"""',"CreatedOn":' || {dialect.timestamp(created_at)}""",
            f"""',"ModifiedBy":' || {dialect.text(modified_by)}""",
            f"""',"ModifiedOn":' || {dialect.timestamp(modified_at)}""",
            f"""',"SubmissionId":' || {dialect.integer(submission_id)}""",
        ]
        params: list[Any] = []
        for name, kind in self.shape:
            sql, value_params = dialect.value(data, name, kind)
            pieces.append(f"',' || %s || ':' || {sql}")
            params += [json.dumps(name, ensure_ascii=False), *value_params]
        return "(" + " || ".join(pieces) + " || '}')", params
