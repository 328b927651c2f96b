"""The JSON parts of a view (fields, filters, parameters, ordering) checked against its
record type's fields: every problem reported at once, by where it is.

A view is a saved query of the integration surface; it lives here, beside the selectors
that run it, because records checks the views that use a record type whenever it changes."""

from collections.abc import Iterable, Mapping
from typing import Any

from apps.records.models import Record, RecordField
from apps.records.selectors import (
    OPS,
    ORDERED,
    SYSTEM_KEYS,
    TEXTUAL,
    InvalidQuery,
    filter_records,
)
from apps.records.validation import FieldSpec, as_spec, parse_parameter

Type = RecordField.Type
# Query() reads these URL parameters itself; a view's parameters cannot take their names.
RESERVED_PARAMETERS = ("limit", "cursor", "since")
FILTER_KEYS = {"field", "op", "value", "parameter"}
PARAMETER_KEYS = {"name", "type", "required", "default"}
ORDERING_KEYS = {"field", "direction"}


def _known(specs: dict[str, FieldSpec]) -> str:
    return ", ".join([*specs, *SYSTEM_KEYS])


def _kind(name: Any, specs: dict[str, FieldSpec]) -> str | None:
    if not isinstance(name, str):  # a list or an object where a field name belongs
        return None
    if name in SYSTEM_KEYS:
        return SYSTEM_KEYS[name][1]
    spec = specs.get(name)
    return spec.type if spec else None


def _check_list(value: Any, key: str, errors: dict[str, str]) -> list:
    if not isinstance(value, list):
        errors[key] = "Expected a JSON list."
        return []
    return value


def _check_object(item: Any, where: str, keys: set[str], errors: dict[str, str]) -> bool:
    if not isinstance(item, Mapping):
        errors[where] = f"Expected an object with {', '.join(sorted(keys))}."
        return False
    if unknown := sorted(set(item) - keys):
        errors[where] = f"Unknown keys {', '.join(unknown)}; expected: {', '.join(sorted(keys))}."
        return False
    return True


def check_fields(fields: Any, specs: dict[str, FieldSpec], errors: dict[str, str]) -> None:
    seen = set()
    for index, name in enumerate(_check_list(fields, "fields", errors)):
        if not isinstance(name, str):
            errors[f"fields[{index}]"] = f"Expected a field name (text), got {name!r:.80}."
            continue
        if name not in specs:
            errors[f"fields[{index}]"] = (
                f"{name!r} is not a field of the record type; they are: {', '.join(specs)}."
            )
        elif name in seen:
            errors[f"fields[{index}]"] = f"{name!r} is listed twice."
        seen.add(name)


def check_parameters(parameters: Any, errors: dict[str, str]) -> dict[str, Mapping]:
    """The well-formed parameters, by name."""
    declared: dict[str, Mapping] = {}
    for index, item in enumerate(_check_list(parameters, "parameters", errors)):
        where = f"parameters[{index}]"
        if not _check_object(item, where, PARAMETER_KEYS, errors):
            continue
        name, kind = item.get("name"), item.get("type", Type.TEXT)
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            errors[f"{where}.name"] = "A parameter needs a name without surrounding spaces."
        elif name in RESERVED_PARAMETERS:
            errors[f"{where}.name"] = (
                f"{name!r} is read by Query() itself; reserved: {', '.join(RESERVED_PARAMETERS)}."
            )
        elif name in declared:
            errors[f"{where}.name"] = f"There are two parameters named {name!r}."
        elif kind not in Type.values:
            errors[f"{where}.type"] = f"{kind!r} is not one of: {', '.join(Type.values)}."
        elif not isinstance(item.get("required", False), bool):
            errors[f"{where}.required"] = "Expected true or false."
        else:
            default = item.get("default")
            if default is not None:
                try:
                    parse_parameter(parameter_spec(item), default)
                except ValueError as exc:
                    errors[f"{where}.default"] = f"Not a {kind} value: {exc}"
                    continue
            declared[name] = item
    return declared


def parameter_spec(parameter: Mapping) -> FieldSpec:
    """How a parameter's value is read from the URL. Choices are checked against the field
    they filter (a parameter has no choices of its own), so they are read as text here."""
    kind = parameter.get("type") or Type.TEXT
    if kind in (Type.CHOICE, Type.MULTI_CHOICE):
        kind = Type.TEXT
    return FieldSpec(name=parameter["name"], type=kind)


def check_filters(
    filters: Any,
    specs: dict[str, FieldSpec],
    parameters: dict[str, Mapping],
    errors: dict[str, str],
) -> None:
    for index, item in enumerate(_check_list(filters, "filters", errors)):
        where = f"filters[{index}]"
        if not _check_object(item, where, FILTER_KEYS, errors):
            continue
        field, op = item.get("field"), item.get("op", "eq")
        if _kind(field, specs) is None:
            errors[f"{where}.field"] = f"{field!r} is not a field; the fields are: {_known(specs)}."
            continue
        if op not in OPS:
            errors[f"{where}.op"] = f"{op!r} is not an operator; they are: {', '.join(OPS)}."
            continue
        if ("value" in item) == ("parameter" in item):
            errors[where] = "Give either a value or the name of a parameter."
            continue
        if "parameter" in item:
            parameter = item["parameter"]
            if parameter not in parameters:
                names = ", ".join(parameters) or "(none)"
                errors[f"{where}.parameter"] = (
                    f"{parameter!r} is not a parameter of the view; they are: {names}."
                )
                continue
            kind = _kind(field, specs)
            if op == "contains" and kind not in (*TEXTUAL, Type.MULTI_CHOICE):
                errors[f"{where}.op"] = f"contains is for text; {field} is {kind}."
            elif op in ("lt", "lte", "gt", "gte") and (kind not in ORDERED or kind == Type.BOOLEAN):
                errors[f"{where}.op"] = f"{op} does not compare {kind} values."
            continue
        # A constant: let the selectors build (not run) the query, as Query() will.
        try:
            filter_records(Record.objects.none(), specs.values(), [(field, op, item["value"])])
        except InvalidQuery as exc:
            errors[where] = "; ".join(exc.errors.values())


def check_ordering(ordering: Any, specs: dict[str, FieldSpec], errors: dict[str, str]) -> None:
    for index, item in enumerate(_check_list(ordering, "ordering", errors)):
        where = f"ordering[{index}]"
        if not _check_object(item, where, ORDERING_KEYS, errors):
            continue
        field, direction = item.get("field"), item.get("direction", "asc")
        kind = _kind(field, specs)
        if kind is None:
            errors[f"{where}.field"] = f"{field!r} is not a field; the fields are: {_known(specs)}."
        elif kind not in ORDERED:
            errors[f"{where}.field"] = f"Records cannot be ordered by a {kind} field."
        if direction not in ("asc", "desc"):
            errors[f"{where}.direction"] = 'Expected "asc" or "desc".'


def view_errors(
    record_fields: Iterable[Any],
    *,
    fields: Any,
    filters: Any,
    parameters: Any,
    ordering: Any,
) -> dict[str, str]:
    """Every problem of a view's definition, by where it is ({} when it is sound)."""
    specs = {spec.name: spec for spec in map(as_spec, record_fields)}
    errors: dict[str, str] = {}
    check_fields(fields, specs, errors)
    declared = check_parameters(parameters, errors)
    check_filters(filters, specs, declared, errors)
    check_ordering(ordering, specs, errors)
    return errors
