"""A flow's API settings (the `api` object of the flow document), parsed and validated.

`{"enabled", "method", "path", "mode": "sync"|"async"|"auto", "timeout" (ms),
"allowAnonymous", "roles": [role names], "outputName", "inputSchema", "errorStatus",
"contentType"}`.

`errorStatus` is the HTTP status of a run that completed with record errors: 200 (the
default), 207, any of 400-599, or "phixflow" (400 when no record is returned, else 200).

`contentType` is PhixFlow's `contentType` output attribute set once for the flow: the
Content-Type of its answers when the answer itself names none (apps.flows.media_types
says which media types are refused, and why).
"""

import re
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry

from apps.core.parsers import MAX_DEPTH, too_deep
from apps.flows.media_types import media_type_error

MODES = ("sync", "async", "auto")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
DEFAULT_TIMEOUT_MS = {"sync": 60_000, "auto": 60_000, "async": 500}
KEYS = {
    "enabled",
    "method",
    "path",
    "mode",
    "timeout",
    "allowAnonymous",
    "roles",
    "outputName",
    "inputSchema",
    "errorStatus",
    "contentType",
}
# Axway's header naming the formula instance a resource call runs (several instances of a
# template share its path).
INSTANCE_HEADER = "Elements-Formula-Instance-Id"
PATH = re.compile(r"^(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$")


@dataclass(frozen=True)
class FlowApi:
    enabled: bool = False
    method: str = "GET"
    path: str = ""
    mode: str = "sync"
    timeout_ms: int = 60_000
    allow_anonymous: bool = False
    roles: tuple[str, ...] = ()
    output_name: str = "records"
    input_schema: dict | None = field(default=None, hash=False)
    error_status: int | str = 200
    content_type: str = ""

    @classmethod
    def of(cls, document: Any) -> "FlowApi":
        """Settings with defaults; assumes `api_errors(document)` found nothing."""
        document = document if isinstance(document, dict) else {}
        mode = document.get("mode") or "sync"
        return cls(
            enabled=bool(document.get("enabled", False)),
            method=(document.get("method") or "GET").upper(),
            path=normalise_path(document.get("path") or ""),
            mode=mode,
            timeout_ms=int(document.get("timeout") or DEFAULT_TIMEOUT_MS[mode]),
            # A flow that names roles needs a known caller: never anonymous, whatever the
            # document says (an outside probe called such a flow by leaving its key out).
            allow_anonymous=bool(document.get("allowAnonymous", False))
            and not document.get("roles"),
            roles=tuple(document.get("roles") or ()),
            output_name=document.get("outputName") or "records",
            input_schema=document.get("inputSchema"),
            error_status=document.get("errorStatus", 200),
            content_type=(document.get("contentType") or "").strip(),
        )


def normalise_path(path: str) -> str:
    path = path.strip()
    if path and not path.startswith("/"):
        path = "/" + path
    return path.rstrip("/") if path != "/" else path


def api_errors(document: Any, *, check_schema: bool = True) -> list[str]:
    """What is wrong with an `api` object; empty when it is usable.

    `check_schema=False` skips validating inputSchema against the JSON Schema metaschema
    (~1 ms): for reading settings on every call, after they were checked when saved.
    """
    if document in (None, {}):
        return []
    if not isinstance(document, dict):
        return ["api must be an object."]
    errors = []
    if unknown := set(document) - KEYS:
        errors.append(f"api has unknown fields: {', '.join(sorted(unknown))}.")
    for name in ("enabled", "allowAnonymous"):
        if name in document and not isinstance(document[name], bool):
            errors.append(f"api.{name} must be true or false.")
    method = document.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        errors.append(f"api.method must be one of {', '.join(METHODS)}.")
    path = document.get("path", "")
    if not isinstance(path, str) or (path and not PATH.match(normalise_path(path))):
        errors.append("api.path must look like /greeting or /customers/search.")
    mode = document.get("mode", "sync")
    if mode not in MODES:
        errors.append(f"api.mode must be one of {', '.join(MODES)}.")
    timeout = document.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1
    ):
        errors.append("api.timeout must be a positive number of milliseconds.")
    roles = document.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        errors.append("api.roles must be a list of role names.")

    output_name = document.get("outputName", "records")
    if not isinstance(output_name, str) or not output_name:
        errors.append("api.outputName must be a name such as records.")
    error_status = document.get("errorStatus", 200)
    if error_status != "phixflow" and (
        isinstance(error_status, bool)
        or not isinstance(error_status, int)
        or not (error_status in (200, 207) or 400 <= error_status <= 599)
    ):
        errors.append('api.errorStatus must be 200, 207, a status from 400 to 599, or "phixflow".')
    content_type = document.get("contentType")
    if content_type not in (None, "") and (problem := media_type_error(content_type)):
        errors.append(f"api.contentType: {problem}")
    schema = document.get("inputSchema")
    if schema is not None:
        if not isinstance(schema, dict):
            errors.append("api.inputSchema must be a JSON Schema object.")
        elif too_deep(schema):
            errors.append(f"api.inputSchema nests more than {MAX_DEPTH} levels deep.")
        elif check_schema:
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                errors.append(f"api.inputSchema is not a valid JSON Schema: {exc.message}")
            if remote := [ref for ref in _refs(schema) if not ref.startswith("#")]:
                errors.append(
                    f"api.inputSchema may only use local $ref (#/…), not {remote[0]!r}: "
                    "schemas are never fetched from elsewhere."
                )
    return errors


def _coerced(text: Any, kind: Any) -> Any:
    """A query string value as the type its schema property declares, when it reads as one."""
    if not isinstance(text, str):
        return text
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
    except ValueError:
        return text
    if kind == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def typed_query(schema: dict, query: dict) -> dict:
    """Query parameters are text; give them the types the input schema's properties declare."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return query
    typed = {}
    for name, value in query.items():
        kind = (
            (properties.get(name) or {}).get("type")
            if isinstance(properties.get(name), dict)
            else None
        )
        typed[name] = (
            [_coerced(item, kind) for item in value]
            if isinstance(value, list)
            else _coerced(value, kind)
        )
    return typed


def _refs(schema: Any) -> list[str]:
    if isinstance(schema, dict):
        found = [schema["$ref"]] if isinstance(schema.get("$ref"), str) else []
        return found + [ref for value in schema.values() for ref in _refs(value)]
    if isinstance(schema, list):
        return [ref for value in schema for ref in _refs(value)]
    return []


def input_errors(schema: dict, value: Any) -> list[dict]:
    """Every violation of the input schema, as RFC 9457 `errors` entries.

    The empty registry means a $ref is never fetched over the network (refused at save)."""
    validator = Draft202012Validator(schema, registry=Registry())
    return [
        {
            "pointer": "#" + "".join(f"/{part}" for part in error.absolute_path),
            "detail": error.message,
        }
        for error in sorted(
            validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path))
        )
    ]
