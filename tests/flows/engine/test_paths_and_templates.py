import pytest

from apps.flows.engine.paths import get_path, set_path
from apps.flows.engine.templates import render, render_string, template_errors

DATA = {"data": {"items": [{"id": 7, "tags": ["a", "b"]}]}, "n": 0}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("data.items[0].id", 7),
        ("$.data.items[0].tags[1]", "b"),
        ("data.items.0.id", 7),
        ("data.items[5].id", None),
        ("n", 0),
        ("missing.deeper", None),
    ],
)
def test_get_path_reads_dotted_and_indexed_paths(path, expected):
    assert get_path(DATA, path) == expected


def test_set_path_creates_what_is_missing():
    record: dict = {"a": 1}
    set_path(record, "stats.numFlows", 3)
    set_path(record, "list[1].x", "y")
    assert record == {"a": 1, "stats": {"numFlows": 3}, "list": [None, {"x": "y"}]}


def test_a_whole_string_expression_keeps_the_value_type():
    scope = {"record": {"id": 7, "tags": ["a"]}}
    assert render_string("{{ record.id }}", scope) == 7
    assert render({"ids": "{{record.tags}}"}, scope) == {"ids": ["a"]}


def test_expressions_inside_text_are_inserted_as_text_and_encoded_in_uris():
    scope = {"variables": {"status": "open & new"}, "record": {"id": None}}
    assert render_string("/leads?status={{variables.status}}", scope, encode=True) == (
        "/leads?status=open%20%26%20new"
    )
    assert render_string("id={{record.id}};", scope) == "id=;"


def test_unbalanced_braces_are_reported():
    assert template_errors({"a": ["{{ record.id }"]})
    assert template_errors("/x/{{record.id}}") == []
