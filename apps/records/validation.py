"""Record data against its record type's fields: every bad field reported at once.

Values are stored normalised, so that selectors can compare them in the database:
- choices as plain strings (Flowfinity's `{"Selection": "Warm"}` is accepted on input),
  multiple choices as a list of strings in the order given, without repeats;
- dates as `YYYY-MM-DD`; dates and times in UTC as `YYYY-MM-DDTHH:MM:SS.mmmZ`;
- numbers as JSON numbers, integers as JSON integers within 64 bits;
- an empty value ("", null, an empty list) as null — a required field needs a value.
"""

import math
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.records.models import SYSTEM_FIELDS, RecordField

Type = RecordField.Type
TEXT_TYPES = (Type.TEXT, Type.LONG_TEXT, Type.EMAIL, Type.URL, Type.CHOICE)
INT64 = (-(2**63), 2**63 - 1)
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
REQUIRED = "This field is required."
email_validator = EmailValidator()
url_validator = URLValidator()


class Invalid(Exception):
    """Problems by name (`errors`); its text lists them all."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))


class RecordInvalid(Invalid):
    """Record data that does not fit its record type; `errors` maps field name to message
    (`__all__` for the data as a whole)."""


@dataclass(frozen=True)
class FieldSpec:
    """What validation needs of a field: a RecordField, or a field of a document."""

    name: str
    type: str
    required: bool = False
    choices: tuple[str, ...] = ()
    default: Any = None


def as_spec(field: Any) -> FieldSpec:
    if isinstance(field, FieldSpec):
        return field
    if isinstance(field, Mapping):
        get = field.get
    else:

        def get(key, default=None):
            return getattr(field, key, default)

    return FieldSpec(
        name=get("name"),
        type=str(get("type") or Type.TEXT),
        required=bool(get("required", False)),
        choices=tuple(get("choices") or ()),
        default=get("default"),
    )


def format_datetime(value: datetime) -> str:
    """UTC, milliseconds, `Z`: sorts as text in time order (and as JavaScript writes it)."""
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    if value.utcoffset():
        try:
            value = value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+01:00 is in the year 0 in UTC
            raise ValueError(
                "The date and time is out of range: it must fall within the years 0001 to "
                "9999 in UTC."
            ) from None
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _choice(spec: FieldSpec, value: Any) -> str:
    if isinstance(value, Mapping) and set(value) == {"Selection"}:
        value = value["Selection"]
    if not isinstance(value, str):
        raise ValueError('Expected one of the choices, as text or {"Selection": …}.')
    if value not in spec.choices:
        raise ValueError(f"{value!r} is not one of {', '.join(spec.choices)}")
    return value


def _number(value: Any) -> int | float:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("Expected a finite number.")
        value = int(value) if value == value.to_integral_value() else float(value)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("Expected a number.")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("Expected a finite number.")
    if abs(value) > sys.float_info.max:  # an integer literal past what a float holds
        raise ValueError("The number is too large (about 1.8e308 at most).")
    return value


def _integer(value: Any) -> int:
    if isinstance(value, Decimal | float) and not isinstance(value, bool):
        number = _number(value)
        if isinstance(number, float) and not number.is_integer():
            raise ValueError("Expected an integer (a whole number).")
        value = int(number)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("Expected an integer (a whole number).")
    if not INT64[0] <= value <= INT64[1]:
        raise ValueError("The integer is too large (64 bits at most).")
    return value


def _date(value: Any) -> str:
    if isinstance(value, datetime):
        raise ValueError("Expected a date as YYYY-MM-DD, without a time.")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str) and DATE_RE.match(value):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise ValueError("Expected a date as YYYY-MM-DD.")


def _datetime(value: Any) -> str:
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is not None:
            return format_datetime(parsed)
    raise ValueError("Expected a date and time in ISO 8601, e.g. 2024-05-01T09:30:00Z.")


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("Expected text.")
    if "\x00" in value:  # PostgreSQL cannot store it in JSON
        raise ValueError("Text cannot contain NUL (\\u0000) characters.")
    return value


def _validated(validator, message: str):
    def check(value: Any) -> str:
        value = _text(value).strip()
        try:
            validator(value)
        except ValidationError:
            raise ValueError(message) from None
        return value

    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("Expected true or false.")
    return value


SCALARS = {
    Type.TEXT: _text,
    Type.LONG_TEXT: _text,
    Type.NUMBER: _number,
    Type.INTEGER: _integer,
    Type.BOOLEAN: _boolean,
    Type.DATE: _date,
    Type.DATETIME: _datetime,
    Type.EMAIL: _validated(email_validator, "Enter a valid email address."),
    Type.URL: _validated(url_validator, "Enter a valid URL, e.g. https://example.com/."),
}


def is_empty(spec: FieldSpec, value: Any) -> bool:
    if spec.type == Type.JSON:
        return value is None
    return value is None or value == "" or value == []


def coerce_value(field: Any, value: Any) -> Any:
    """The normalised value of one field; ValueError with a message when it is not one.
    An empty value is returned as None (the caller decides whether that is allowed)."""
    spec = as_spec(field)
    if is_empty(spec, value):
        return None
    if spec.type == Type.JSON:
        return value
    if spec.type == Type.CHOICE:
        return _choice(spec, value)
    if spec.type == Type.MULTI_CHOICE:
        if not isinstance(value, list | tuple):
            raise ValueError('Expected a list of choices, as text or {"Selection": …}.')
        chosen, bad = [], []
        for item in value:
            try:
                choice = _choice(spec, item)
            except ValueError as exc:
                bad.append(str(exc))
                continue
            if choice not in chosen:
                chosen.append(choice)
        if bad:
            raise ValueError("; ".join(bad))
        return chosen
    try:
        convert = SCALARS[spec.type]
    except KeyError:
        raise ValueError(f"{spec.type!r} is not a field type.") from None
    return convert(value)


def parse_parameter(field: Any, raw: Any) -> Any:
    """A value from a URL parameter or a filter (often text) as a value of the field:
    "10" for a number, "true"/"false" for yes/no, else as `coerce_value`."""
    spec = as_spec(field)
    if isinstance(raw, str):
        text = raw.strip()
        if spec.type in (Type.NUMBER, Type.INTEGER) and text:
            try:
                raw = Decimal(text)
            except ArithmeticError:
                raise ValueError(
                    "Expected an integer." if spec.type == Type.INTEGER else "Expected a number."
                ) from None
        elif spec.type == Type.BOOLEAN:
            lowered = text.lower()
            if lowered in {"true", "1", "yes"}:
                raw = True
            elif lowered in {"false", "0", "no"}:
                raw = False
        elif spec.type == Type.MULTI_CHOICE:
            raw = [raw]
    elif spec.type == Type.MULTI_CHOICE and not isinstance(raw, list | tuple):
        raw = [raw]
    return coerce_value(spec, raw)


def clean_record(
    record_type_fields: Iterable[Any], data: Any, *, partial: bool = False
) -> dict[str, Any]:
    """The normalised values of `data` (a JSON object of values by field name).

    Raises RecordInvalid listing every bad field: missing required fields, wrong types,
    values that are not one of the choices, and unknown fields. System fields (RecordID,
    SubmissionId, …) are read-only and ignored, so a record document can be sent back.
    On create (`partial=False`) every field is in the result: its value, else its
    default, else None. On a partial update only the fields given are.
    """
    specs = [as_spec(field) for field in record_type_fields]
    if not isinstance(data, Mapping):
        raise RecordInvalid({NON_FIELD_ERRORS: "Expected a JSON object of field values."})
    by_name = {spec.name: spec for spec in specs}
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {}
    for spec in specs:
        if spec.name in data:
            value = data[spec.name]
        elif partial:
            continue
        else:
            value = spec.default
        try:
            value = coerce_value(spec, value)
        except ValueError as exc:
            errors[spec.name] = str(exc)
            continue
        if value is None and spec.required:
            errors[spec.name] = REQUIRED
            continue
        cleaned[spec.name] = value
    known = ", ".join(by_name) or "(none)"
    for name in data:
        if name not in by_name and name not in SYSTEM_FIELDS:
            errors[str(name)] = f"Unknown field; the fields are: {known}."
    if errors:
        raise RecordInvalid(errors)
    return cleaned
