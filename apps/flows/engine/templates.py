"""Flowsite's one template syntax: `{{ path }}` over the run's scope.

The scope has `variables`, `trigger`, `record` (the current record, in lookups and
imports), `records` (a batch) and `processId`. A string that is exactly one `{{ path }}`
yields the value itself (a number stays a number, an object an object); inside a longer
string the value is inserted as text (objects as JSON, missing values as ""). In URIs
inserted values are percent-encoded. Templates are compiled once and cached.
"""

import json
import re
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from apps.flows.engine.paths import get_path

_EXPRESSION = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")


@lru_cache(maxsize=4096)
def compile_string(template: str) -> tuple[tuple[bool, str], ...]:
    """(is_expression, text) segments."""
    segments: list[tuple[bool, str]] = []
    position = 0
    for match in _EXPRESSION.finditer(template):
        if match.start() > position:
            segments.append((False, template[position : match.start()]))
        segments.append((True, match.group(1)))
        position = match.end()
    if position < len(template):
        segments.append((False, template[position:]))
    return tuple(segments)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def render_string(template: str, scope: dict, *, encode: bool = False) -> Any:
    segments = compile_string(template)
    if len(segments) == 1 and segments[0][0] and not encode:
        return get_path(scope, segments[0][1])
    parts = []
    for is_expression, text in segments:
        if is_expression:
            value = _as_text(get_path(scope, text))
            parts.append(quote(value, safe="") if encode else value)
        else:
            parts.append(text)
    return "".join(parts)


def render(value: Any, scope: dict) -> Any:
    """Render every string inside a JSON value (objects and lists recursively)."""
    if isinstance(value, str):
        return render_string(value, scope) if "{{" in value else value
    if isinstance(value, dict):
        return {key: render(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [render(item, scope) for item in value]
    return value


def template_errors(value: Any) -> list[str]:
    """Unbalanced braces in any string of a JSON value, for validation at save."""
    errors = []
    if isinstance(value, str):
        stripped = _EXPRESSION.sub("", value)
        if "{{" in stripped or "}}" in stripped:
            errors.append(f"Unbalanced template braces in {value!r}: write {{{{ path }}}}.")
    elif isinstance(value, dict):
        for item in value.values():
            errors.extend(template_errors(item))
    elif isinstance(value, list):
        for item in value:
            errors.extend(template_errors(item))
    return errors
