"""RFC 6902 JSON Patch whose refusals speak JSON Patch and the document, never Python.

The jsonpatch library applies the operations; before each one is applied, this module
checks it against the document as it stands after the previous ones, so a refusal names
the operation, its path and what the document holds there: `test failed at /name:
expected "Nightly", the flow has "Hourly"`, `/http/nope does not exist: the export's
/http has no member "nope"`.
"""

import json
from typing import Any

import jsonpatch
import jsonpointer

OPERATIONS = ("add", "remove", "replace", "move", "copy", "test")
_MISSING = object()


class PatchRefused(ValueError):
    """An operation that cannot be applied: its index in the patch and why, in words."""

    def __init__(self, index: int | None, message: str):
        super().__init__(message)
        self.index = index
        self.message = message


def looks_like_json_patch(body: Any) -> bool:
    """A JSON array is a JSON Patch: a merge patch (RFC 7386) or a document is an object."""
    return isinstance(body, list)


def shown(value: Any, limit: int = 80) -> str:
    """A value as JSON text, cut to `limit` characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _pointer(parts: list[str]) -> str:
    return jsonpointer.JsonPointer.from_parts(parts).path or "the document's root"


def _parts(pointer: Any, member: str) -> list[str]:
    if not isinstance(pointer, str):
        raise ValueError(f'"{member}" must be a JSON Pointer (text such as "/name")')
    if pointer and not pointer.startswith("/"):
        raise ValueError(
            f'"{member}" {shown(pointer)} is not a JSON Pointer: it starts with "/" (e.g. '
            f'"/{pointer}"), or is "" for the whole document'
        )
    try:
        return jsonpointer.JsonPointer(pointer).parts
    except jsonpointer.JsonPointerException:
        raise ValueError(
            f'"{member}" {shown(pointer)} is not a valid JSON Pointer: "~" is written '
            '"~0" and "/" inside a name "~1"'
        ) from None


def _index(part: str, items: list, *, insert: bool) -> int | None:
    """The array index a pointer part names, or None when it names none."""
    if part == "-" and insert:
        return len(items)
    if not part.isdigit() or (part != "0" and part.startswith("0")):
        return None
    index = int(part)
    return index if index < len(items) + (1 if insert else 0) else None


def _resolve(document: Any, parts: list[str], noun: str, *, insert: bool = False) -> Any:
    """The value at `parts` (with `insert`, the container a value would be added to and
    may be missing at the last part); ValueError saying where the path leaves the document."""
    node = document
    walked: list[str] = []
    for position, part in enumerate(parts):
        last = position == len(parts) - 1
        target = _pointer([*parts[: position + 1]])
        where = f"the {noun}'s {_pointer(walked)}" if walked else f"the {noun}"
        if isinstance(node, dict):
            if part not in node:
                if insert and last:
                    return _MISSING
                raise ValueError(f'{target} does not exist: {where} has no member "{part}"')
            node = node[part]
        elif isinstance(node, list):
            index = _index(part, node, insert=insert and last)
            if index is None:
                count = len(node)
                span = f"indexes 0 to {count - 1}" if count else "no items"
                extra = ', or "-" to append' if insert and last else ""
                raise ValueError(
                    f"{target} does not exist: {where} is an array of {count} item"
                    f"{'' if count == 1 else 's'} ({span}{extra})"
                )
            if insert and last and index == len(node):
                return _MISSING
            node = node[index]
        else:
            raise ValueError(
                f"{target} does not exist: {where} is {_json_type(node)} ({shown(node, 40)}), "
                "not an object or an array"
            )
        walked.append(part)
    return node


def _check(document: Any, operation: Any, noun: str) -> None:
    """Raise ValueError when the operation cannot be applied to the document."""
    if not isinstance(operation, dict):
        raise ValueError(
            f'an operation is an object such as {{"op": "replace", "path": "/name", "value": '
            f'"New name"}}, not {_json_type(operation)}'
        )
    op = operation.get("op")
    if op not in OPERATIONS:
        given = f"{shown(op)} is not one" if "op" in operation else "it is missing"
        raise ValueError(f'"op" must be one of {", ".join(OPERATIONS)}: {given}')
    if "path" not in operation:
        raise ValueError(f'a "{op}" operation needs "path", the JSON Pointer it applies to')
    path = _parts(operation["path"], "path")
    if op in ("add", "replace", "test") and "value" not in operation:
        raise ValueError(f'a "{op}" operation needs "value"')
    if op in ("move", "copy"):
        if "from" not in operation:
            raise ValueError(f'a "{op}" operation needs "from", the JSON Pointer of the value')
        source = _parts(operation["from"], "from")
        _resolve(document, source, noun)
        if op == "move" and path[: len(source)] == source and path != source:
            raise ValueError(f"{operation['from']} cannot move inside itself")
    if op == "remove" and not path:
        raise ValueError(f"the whole {noun} cannot be removed")
    if op in ("remove", "replace", "test"):
        _resolve(document, path, noun)
    elif path:  # add, move, copy: the value goes into an object or an array that exists
        _resolve(document, path, noun, insert=True)


def apply(document: Any, operations: Any, *, noun: str = "document") -> Any:
    """The document with the operations applied in order, or PatchRefused for the first
    that cannot be (nothing is applied then). `noun` names the document in messages."""
    if not isinstance(operations, list):
        raise PatchRefused(
            None,
            "a JSON Patch is an array of operations, e.g. "
            '[{"op": "replace", "path": "/name", "value": "New name"}]',
        )
    current = document
    for index, operation in enumerate(operations):
        try:
            _check(current, operation, noun)
        except ValueError as exc:
            raise PatchRefused(index, str(exc)) from None
        try:
            current = jsonpatch.apply_patch(current, [operation])
        except jsonpatch.JsonPatchTestFailed:
            found = _resolve(current, _parts(operation["path"], "path"), noun)
            raise PatchRefused(
                index,
                f"test failed at {operation['path'] or 'the root'}: expected "
                f"{shown(operation['value'])}, the {noun} has {shown(found)}",
            ) from None
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException):
            # Checked above; kept so no library message ever reaches a caller.
            raise PatchRefused(
                index, f'"{operation["op"]}" at {operation["path"]} cannot be applied'
            ) from None
    return current
