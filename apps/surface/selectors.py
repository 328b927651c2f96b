"""Reads of the integration surface: who may call, Query() pages, and the "details" the
surface configuration page shows (URL, curl example, example payload, warnings)."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from django.db.models import QuerySet

from apps.accounts.models import User
from apps.accounts.privileges import Privilege
from apps.records.definitions import RESERVED_PARAMETERS, parameter_spec, view_errors
from apps.records.models import RecordField
from apps.records.selectors import (
    DEFAULT_LIMIT,
    RecordPage,
    query_records,
)
from apps.records.validation import parse_parameter
from apps.surface import lookup_cache
from apps.surface.models import Operation, SurfaceConfiguration, View

Type = RecordField.Type


class SurfaceRefused(Exception):
    """Why a caller may not call: `status`, `code`, `detail` and extension members."""

    def __init__(self, status: int, code: str, detail: str, **extensions: Any):
        self.status, self.code, self.detail, self.extensions = status, code, detail, extensions
        super().__init__(detail)


@dataclass(frozen=True)
class Surface:
    """One of the two surface functions, with what it needs of a caller."""

    name: str  # "Execute()" or "Query()"
    toggle: str  # the SurfaceConfiguration field that switches it on
    privilege: Privilege


EXECUTE = Surface("Execute()", "execute", Privilege.EXECUTE_OPERATIONS)
QUERY = Surface("Query()", "query", Privilege.QUERY_VIEWS)


def _read_switches() -> lookup_cache.Switches:
    configuration = SurfaceConfiguration.load()
    return lookup_cache.Switches(
        execute=configuration.execute,
        query=configuration.query,
        accounts=frozenset(configuration.integration_accounts.values_list("pk", flat=True)),
    )


def switches() -> lookup_cache.Switches:
    """The surface configuration's switches and accounts (remembered 0.5 s)."""
    return lookup_cache.remembered("switches", _read_switches)


def check_caller(surface: Surface, user: User) -> None:
    """Raise SurfaceRefused unless `user` may call `surface` at all (before any lookup:
    a caller who may not call learns nothing about which operations exist)."""
    configuration = switches()
    if not getattr(configuration, surface.toggle):
        raise SurfaceRefused(
            403,
            "surface-disabled",
            f"{surface.name} is disabled in the surface configuration: an administrator must "
            f"enable it (admin: Integration surface, Surface configuration).",
        )
    if not user.is_integration:
        raise SurfaceRefused(
            403,
            "integration-account-required",
            f"Only integration accounts can call {surface.name}; {user.get_username()!r} is a "
            "regular account.",
        )
    if user.pk not in configuration.accounts:
        raise SurfaceRefused(
            403,
            "integration-account-not-allowed",
            f"{user.get_username()!r} is not one of the integration accounts chosen in the "
            "surface configuration.",
        )
    if not user.has_perm(surface.privilege.perm):
        raise SurfaceRefused(
            403,
            "missing-privilege",
            f"Your account lacks the privilege '{surface.privilege.value}'. Ask an "
            "administrator to grant it through a role.",
            privilege=surface.privilege.value,
        )


def check_roles(subject: Operation | View, user: User) -> None:
    names = [role.name for role in subject.roles.all()]
    if names and not user.roles.filter(name__in=names).exists():
        kind = subject._meta.verbose_name
        raise SurfaceRefused(
            403,
            "role-required",
            f"The {kind} {subject.name!r} may be called only by members of: {', '.join(names)}.",
            roles=names,
        )


def operation_by_name(application: str, name: str) -> Operation:
    """The REST-enabled operation, with its roles and its record type's fields (remembered
    0.5 s; see lookup_cache)."""
    operation = lookup_cache.remembered(
        ("operation", application, name),
        lambda: (
            Operation.objects.select_related("application", "record_type", "flow")
            .prefetch_related("roles", "record_type__fields")
            .filter(application__name=application, name=name, rest_execute=True)
            .first()
        ),
    )
    if operation is None:
        raise SurfaceRefused(
            404,
            "not-found",
            f"Operation {name!r} of application {application!r} does not exist or is not "
            "enabled for REST Execute().",
        )
    return operation


def view_by_name(application: str, name: str) -> View:
    """The REST-enabled view, with its roles and its record type's fields (remembered
    0.5 s; see lookup_cache)."""
    view = lookup_cache.remembered(
        ("view", application, name),
        lambda: (
            View.objects.select_related("application", "record_type")
            .prefetch_related("roles", "record_type__fields")
            .filter(application__name=application, name=name, rest_query=True)
            .first()
        ),
    )
    if view is None:
        raise SurfaceRefused(
            404,
            "not-found",
            f"View {name!r} of application {application!r} does not exist or is not enabled "
            "for REST Query().",
        )
    return view


# --- Query() --------------------------------------------------------------------------


class BadQuery(ValueError):
    """URL parameters that do not fit the view; `errors` maps parameter to message."""

    def __init__(self, detail: str, errors: dict[str, str], **extensions: Any):
        self.detail, self.errors, self.extensions = detail, errors, extensions
        super().__init__(detail)


def _describe(parameters: list[Mapping]) -> str:
    if not parameters:
        return "The view has no parameters."
    described = [
        f"{p['name']} ({p.get('type', 'text')}{', required' if p.get('required') else ''})"
        for p in parameters
    ]
    return "The view's parameters are: " + ", ".join(described) + "."


def _integer(raw: str, name: str, low: int, high: int | None = None) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        limit = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise BadQuery(f"{name} must be a whole number {limit}.", {name: f"Expected {limit}."})
    return value


def view_filters(view: View, query: Mapping[str, str]) -> list[tuple[str, str, Any]]:
    """The view's filters with the caller's parameter values (BadQuery when they do not
    fit). A filter whose optional parameter is absent (without a default) is left out."""
    parameters = list(view.parameters)
    names = {p["name"] for p in parameters}
    if unknown := [name for name in query if name not in names and name not in RESERVED_PARAMETERS]:
        listed = ", ".join(repr(name) for name in unknown)
        raise BadQuery(
            f"Unknown query parameter {listed}. {_describe(parameters)} Query() also reads "
            f"{', '.join(RESERVED_PARAMETERS)}.",
            {name: "Not a parameter of the view." for name in unknown},
            parameters=[p["name"] for p in parameters],
        )
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    ops = {f.get("parameter"): f.get("op", "eq") for f in view.filters if "parameter" in f}
    for parameter in parameters:
        name = parameter["name"]
        raw = query.get(name)
        if raw is None or raw == "":
            if parameter.get("required"):
                errors[name] = "This parameter is required."
            elif parameter.get("default") is not None:
                values[name] = parameter["default"]
            continue
        parts = raw.split(",") if ops.get(name) == "in" else [raw]
        try:
            for part in parts:
                parse_parameter(parameter_spec(parameter), part)
        except ValueError as exc:
            errors[name] = f"Not a {parameter.get('type', 'text')} value: {exc}"
            continue
        values[name] = raw
    if errors:
        missing = [name for name, message in errors.items() if message.endswith("required.")]
        detail = (
            f"Missing required parameter {', '.join(missing)}."
            if missing
            else "Invalid parameter " + ", ".join(errors) + "."
        )
        raise BadQuery(f"{detail} {_describe(parameters)}", errors)
    filters = []
    for item in view.filters:
        if "parameter" in item:
            if item["parameter"] not in values:
                continue
            value = values[item["parameter"]]
        else:
            value = item["value"]
        filters.append((item["field"], item.get("op", "eq"), value))
    return filters


def view_fields(view: View) -> list[RecordField]:
    """The fields a view's records carry, in the view's order (all when it names none)."""
    fields = list(view.record_type.fields.all())
    if not view.fields:
        return fields
    by_name = {field.name: field for field in fields}
    return [by_name[name] for name in view.fields if name in by_name]


def query_view(view: View, query: Mapping[str, str]) -> RecordPage:
    """A page of the view's record documents for Query()'s URL parameters: the view's own,
    and limit (1…1000, default 100), cursor (the Link header's) and since (a SubmissionId:
    only records created or changed after it, oldest change first). Raises BadQuery, or
    InvalidQuery from the selectors of records."""
    filters = view_filters(view, query)
    limit = _integer(query["limit"], "limit", 1, 1000) if query.get("limit") else DEFAULT_LIMIT
    since = _integer(query["since"], "since", 0) if query.get("since") else None
    ordering = [(item["field"], item.get("direction", "asc")) for item in view.ordering]
    return query_records(
        view.record_type,
        filters=filters,
        ordering=ordering,
        since=since,
        after=query.get("cursor") or None,
        limit=limit,
        shown=view_fields(view),
    )


# --- Details for the surface configuration page ---------------------------------------

SAMPLES = {
    Type.TEXT: "Some text",
    Type.LONG_TEXT: "Some longer text",
    Type.NUMBER: 12.5,
    Type.INTEGER: 42,
    Type.BOOLEAN: True,
    Type.DATE: "2024-05-01",
    Type.DATETIME: "2024-05-01T09:30:00.000Z",
    Type.EMAIL: "someone@example.com",
    Type.URL: "https://example.com",
    Type.JSON: {"any": "JSON"},
}


def example_value(field: RecordField) -> Any:
    if field.type == Type.CHOICE:
        return {"Selection": field.choices[0] if field.choices else ""}
    if field.type == Type.MULTI_CHOICE:
        return [{"Selection": choice} for choice in field.choices[:2]]
    if field.default is not None:
        return field.default
    return SAMPLES.get(field.type, "")


def execute_url(operation: Operation) -> str:
    return f"/api/rest/execute/{quote(operation.application.name)}/{quote(operation.name)}"


def query_url(view: View) -> str:
    return f"/api/rest/query/{quote(view.application.name)}/{quote(view.name)}"


def example_payload(operation: Operation) -> dict[str, Any]:
    """What a caller sends to Execute() for this operation, as Flowfinity shows it."""
    payload: dict[str, Any] = {
        "RecordID": None if operation.action == Operation.Action.CREATE else 1,
        "ExternalTransactionId": "2f1c7a52-0001",
    }
    if operation.action != Operation.Action.DELETE:
        for field in operation.record_type.fields.all():
            payload[field.name] = example_value(field)
    return payload


def example_query(view: View) -> str:
    pairs = []
    for parameter in view.parameters:
        value = parameter.get("default")
        if value is None:
            value = SAMPLES.get(parameter.get("type"), "value")
        if isinstance(value, bool):
            value = str(value).lower()
        pairs.append(f"{quote(parameter['name'])}={quote(str(value))}")
    return "&".join(pairs)


def example_answer(fields: list[RecordField]) -> dict[str, Any]:
    document: dict[str, Any] = {
        "RecordID": 1,
        "CreatedBy": "restuser",
        "CreatedOn": "2024-05-01T09:30:00.000Z",
        "ModifiedBy": "restuser",
        "ModifiedOn": "2024-05-01T09:30:00.000Z",
        "SubmissionId": 1,
    }
    for field in fields:
        document[field.name] = example_value(field)
    return document


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def operation_details(operation: Operation, base_url: str) -> dict[str, Any]:
    url = base_url.rstrip("/") + execute_url(operation)
    payload = json.dumps(example_payload(operation), indent=2)
    curl = (
        f"curl -X POST {_shell_quote(url)} \\\n"
        '  -H "Authorization: Bearer <API key>" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d {_shell_quote(json.dumps(example_payload(operation)))}"
    )
    return {"url": url, "method": "POST", "curl": curl, "payload": payload}


def view_details(view: View, base_url: str) -> dict[str, Any]:
    url = base_url.rstrip("/") + query_url(view)
    query = example_query(view)
    full = f"{url}?{query}" if query else url
    curl = f'curl {_shell_quote(full)} \\\n  -H "Authorization: Bearer <API key>"'
    answer = json.dumps([example_answer(view_fields(view))], indent=2)
    return {"url": full, "method": "GET", "curl": curl, "payload": answer}


def may_call(subject: Operation | View, accounts: list[User], privilege: Privilege) -> list[User]:
    """The chosen integration accounts that hold the privilege and a role the operation or
    view names (any account, when it names none)."""
    roles = {role.pk for role in subject.roles.all()}
    able = []
    for account in accounts:
        if not (account.is_active and account.is_integration):
            continue
        if not account.has_perm(privilege.perm):
            continue
        if roles and not roles & {role.pk for role in account.roles.all()}:
            continue
        able.append(account)
    return able


def rest_operations() -> QuerySet[Operation]:
    return (
        Operation.objects.filter(rest_execute=True)
        .select_related("application", "record_type")
        .prefetch_related("roles", "record_type__fields")
    )


def rest_views() -> QuerySet[View]:
    return (
        View.objects.filter(rest_query=True)
        .select_related("application", "record_type")
        .prefetch_related("roles", "record_type__fields")
    )


def surface_overview(configuration: SurfaceConfiguration, base_url: str) -> dict[str, Any]:
    """Everything the surface configuration page shows below its form: each REST-enabled
    operation and view with its details, and what stops the surface from being used."""
    accounts = list(configuration.integration_accounts.prefetch_related("roles"))
    warnings: list[str] = []
    if not User.objects.filter(account_type=User.AccountType.INTEGRATION).exists():
        warnings.append(
            "There are no accounts of Integration type: create a user account with the "
            "account type Integration to call Execute() and Query()."
        )
    elif not accounts:
        warnings.append("No integration account is chosen: choose the accounts that may call.")
    entries = []
    for kind, subjects, privilege, details, enabled in (
        (
            "Operation",
            rest_operations(),
            Privilege.EXECUTE_OPERATIONS,
            operation_details,
            "execute",
        ),
        ("View", rest_views(), Privilege.QUERY_VIEWS, view_details, "query"),
    ):
        for subject in subjects:
            able = may_call(subject, accounts, privilege)
            if not able:
                warnings.append(
                    f"No integration account has the privileges to call {kind.lower()} "
                    f"{subject.application.name} / {subject.name}: it needs "
                    f"'{privilege.value}'"
                    + (
                        " and a role of: " + ", ".join(role.name for role in subject.roles.all())
                        if subject.roles.all()
                        else ""
                    )
                    + "."
                )
            entries.append(
                {
                    "kind": kind,
                    "subject": subject,
                    "enabled": getattr(configuration, enabled),
                    "callers": [account.get_username() for account in able],
                    **details(subject, base_url),
                }
            )
    return {"entries": entries, "warnings": warnings}


def views_broken_by(sender, record_type, fields, **kwargs) -> list[str]:
    """records.signals.fields_changing: what the views of `record_type` would no longer
    do with `fields` (a field they filter, order or show removed, renamed or retyped)."""
    messages = []
    views = list(View.objects.filter(record_type=record_type).order_by("name"))
    # As saved: the record type's prefetched fields may be the ones the change edits.
    saved = list(RecordField.objects.filter(record_type=record_type)) if views else []
    for view in views:
        definition = {
            "fields": view.fields,
            "filters": view.filters,
            "parameters": view.parameters,
            "ordering": view.ordering,
        }
        # Only what the change breaks: a view broken already does not block every change.
        before = view_errors(saved, **definition)
        messages += [
            f'The view "{view.name}" would break: {where}: {problem} Change the view first.'
            for where, problem in view_errors(fields, **definition).items()
            if where not in before
        ]
    return messages
