"""responseMapping: copy parts of a step's response into the record (Celigo semantics).

The source a mapping extracts from is, for a lookup export, `{"data": [records found],
"statusCode"}`, and for an import `{"data": <response body>, "id": <body.id>,
"statusCode"}`. `fields` copy one value each; `lists` build a list of objects from the
source's `data` list, one per element, with their own fields.
"""

from typing import Any

from apps.flows.engine.paths import get_path, set_path
from apps.flows.engine.spec import ResponseMapping


def apply_mapping(record: dict, mapping: ResponseMapping, source: dict) -> dict:
    for field in mapping.fields:
        set_path(record, field.generate, get_path(source, field.extract))
    for list_mapping in mapping.lists:
        items = source.get("data")
        items = items if isinstance(items, list) else [] if items is None else [items]
        set_path(
            record, list_mapping.generate, [_map_item(item, list_mapping.fields) for item in items]
        )
    return record


def _map_item(item: Any, fields) -> Any:
    if not fields:
        return item
    mapped: dict = {}
    for field in fields:
        set_path(mapped, field.generate, get_path(item, field.extract))
    return mapped
