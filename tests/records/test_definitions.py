"""A view's definition checks answer every shape a builder can type, never crash."""

from apps.records.definitions import check_fields, check_filters, check_ordering
from apps.records.validation import FieldSpec


def test_names_that_are_not_text_are_refused_where_they_are():
    specs = {"Company": FieldSpec(name="Company", type="text")}
    errors: dict[str, str] = {}
    check_fields([["Company"], {"a": 1}, "Company"], specs, errors)
    check_filters([{"field": ["Company"]}], specs, {}, errors)
    check_ordering([{"field": {"a": 1}}], specs, errors)
    assert set(errors) == {"fields[0]", "fields[1]", "filters[0].field", "ordering[0].field"}
    assert errors["fields[0]"] == "Expected a field name (text), got ['Company']."
