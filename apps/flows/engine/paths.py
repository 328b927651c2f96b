"""Dotted paths into JSON data: `data.items[0].id` (a leading `$.` is allowed).

The same syntax is used everywhere a flow points into data: templates, resourcePath,
next-link and cursor paths, and responseMapping's extract/generate.
"""

import itertools
import re
from functools import lru_cache
from typing import Any

_TOKEN = re.compile(r"\[(\d+)\]|([^.\[\]]+)")
_MISSING = object()


@lru_cache(maxsize=4096)
def parse(path: str) -> tuple[str | int, ...]:
    path = path.strip()
    if path.startswith("$"):
        path = path[1:].lstrip(".")
    parts: list[str | int] = []
    for index, key in _TOKEN.findall(path):
        parts.append(int(index) if index else key)
    return tuple(parts)


def get_path(data: Any, path: str, default: Any = None) -> Any:
    current = data
    for part in parse(path):
        if isinstance(part, int):
            if isinstance(current, list) and -len(current) <= part < len(current):
                current = current[part]
                continue
            return default
        if isinstance(current, dict):
            current = current.get(part, _MISSING)
            if current is _MISSING:
                return default
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return default
    return current


def set_path(data: dict, path: str, value: Any) -> None:
    """Set `value` at `path` in `data`, creating objects (and list slots) on the way."""
    parts = parse(path)
    if not parts:
        raise ValueError("an empty path cannot be set")
    current: Any = data
    for part, following in itertools.pairwise(parts):
        container = [] if isinstance(following, int) else {}
        if isinstance(part, int):
            while len(current) <= part:
                current.append(None)
            if not isinstance(current[part], dict | list):
                current[part] = container
            current = current[part]
        else:
            if not isinstance(current.get(part), dict | list):
                current[part] = container
            current = current[part]
    last = parts[-1]
    if isinstance(last, int):
        while len(current) <= last:
            current.append(None)
    current[last] = value
