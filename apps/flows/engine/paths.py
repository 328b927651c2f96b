"""Dotted paths into JSON data: `data.items[0].id` (a leading `$.` is allowed).

The same syntax is used everywhere a flow points into data: templates, resourcePath,
next-link and cursor paths, and responseMapping's extract/generate.
"""

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
    """Set `value` at `path` in `data`, creating objects (and list slots) on the way.

    ValueError when the path is empty or runs through a value of the wrong kind (a key
    into a list, an index into an object).
    """
    parts = parse(path)
    if not parts:
        raise ValueError(f"{path!r} is not a path to set")
    current: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(part, int):
            if not isinstance(current, list):
                kind = type(current).__name__
                raise ValueError(f"cannot set {path!r}: [{part}] indexes a {kind}")
            if part > len(current) + 10_000:
                raise ValueError(f"cannot set {path!r}: index {part} is too far past the end")
            while len(current) <= part:
                current.append(None)
        elif not isinstance(current, dict):
            kind = type(current).__name__
            raise ValueError(f"cannot set {path!r}: {part!r} is a key into a {kind}")
        if last:
            current[part] = value
            return
        following = parts[depth + 1]
        child = current[part] if isinstance(part, int) else current.get(part)
        if not isinstance(child, dict | list):
            child = [] if isinstance(following, int) else {}
            current[part] = child
        current = child
