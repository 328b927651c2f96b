"""The seeds' JSON bodies as printed (tests/fixtures/seeds/), played with real ids.

A seed prints bodies with placeholders: masked ids ("55e••••••••••••••••••367"), sample
ids of another system ("55ea776bb751843c37b7ac6ab0"), angle-bracket slots
("<Name Flow Here>") and an ellipsis for "more of the same" ("……"). `played` replaces
exactly those and nothing else, and refuses a body that still holds one, so a test plays
what a user would paste once they have put their own ids in.
"""

import json
import re
from pathlib import Path
from typing import Any

SEEDS = Path(__file__).resolve().parent / "fixtures" / "seeds"
# A JSON object as printed: "{" then a member name (not a URL template such as {_id}).
_OBJECT_START = re.compile(r'\{\s*"')
_PLACEHOLDER = re.compile(r"•|<[^<>]+>|…")


def printed_bodies(name: str) -> list[str]:
    """Each JSON object a seed prints, as its text (outermost objects, in order)."""
    text = (SEEDS / name).read_text(encoding="utf-8")
    bodies = []
    position = 0
    while match := _OBJECT_START.search(text, position):
        depth, index, in_string = 0, match.start(), False
        while True:
            char = text[index]
            if in_string:
                if char == "\\":
                    index += 1
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string = True
            elif char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    break
            index += 1
        bodies.append(text[match.start() : index + 1])
        position = index + 1
    return bodies


def played(printed: str, *, text: dict[str, str] | None = None, **members: Any) -> Any:
    """The printed body with its placeholders replaced, parsed.

    `text`: exact replacements in the printed text (a slot used as a member name, such as
    connectionMap's "<existingConnectionId #1>", or the ellipsis). `members`: every value of
    a member of that name, anywhere in the body, becomes this id (a str or int), or, given a
    dict, the id it maps the printed value to. Each replacement must be used.
    """
    for old, new in (text or {}).items():
        assert old in printed, f"{old!r} is not in the printed body"
        printed = printed.replace(old, new)
    body = json.loads(printed)
    used: set[str] = set()

    def replace(node: Any) -> Any:
        if isinstance(node, list):
            return [replace(item) for item in node]
        if not isinstance(node, dict):
            return node
        result = {}
        for key, value in node.items():
            if key in members and isinstance(value, str | int):
                given = members[key]
                real = given.get(value, value) if isinstance(given, dict) else given
                used.add(key)
                value = str(real)
            result[key] = replace(value)
        return result

    body = replace(body)
    assert used == set(members), f"not in the printed body: {sorted(set(members) - used)}"
    left = _placeholders(body)
    assert not left, f"placeholders left in the body: {left}"
    return body


def _placeholders(node: Any, path: str = "") -> list[str]:
    if isinstance(node, dict):
        return [
            found
            for key, value in node.items()
            for found in ([f"{path}/{key} (name)"] if _PLACEHOLDER.search(key) else [])
            + _placeholders(value, f"{path}/{key}")
        ]
    if isinstance(node, list):
        return [
            found for i, item in enumerate(node) for found in _placeholders(item, f"{path}/{i}")
        ]
    return [f"{path}: {node}"] if isinstance(node, str) and _PLACEHOLDER.search(node) else []
