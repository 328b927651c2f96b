import pytest
from django.core.exceptions import ValidationError

from apps.flows.api_settings import FlowApi, api_errors, input_errors, typed_query
from apps.flows.models import Application, Flow

SCHEMA = {
    "type": "object",
    "required": ["age"],
    "properties": {
        "age": {"type": "integer"},
        "vip": {"type": "boolean"},
        "name": {"type": "string"},
    },
}


def test_query_values_take_the_types_the_input_schema_declares():
    query = typed_query(SCHEMA, {"age": "42", "vip": "true", "name": "7", "other": "x"})
    assert query == {"age": 42, "vip": True, "name": "7", "other": "x"}
    assert input_errors(SCHEMA, query) == []
    assert input_errors(SCHEMA, typed_query(SCHEMA, {"age": "old"})) == [
        {"pointer": "#/age", "detail": "'old' is not of type 'integer'"}
    ]


def test_defaults_depend_on_the_mode():
    assert FlowApi.of({"mode": "async"}).timeout_ms == 500
    assert FlowApi.of({}).timeout_ms == 60_000
    assert FlowApi.of({"path": "greeting/"}).path == "/greeting"


def _nested(schema: dict, depth: int) -> dict:
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"mode": "later"}, "api.mode must be one of"),
        ({"method": "FETCH"}, "api.method must be one of"),
        ({"timeout": 0}, "api.timeout must be a positive number"),
        ({"roles": "admins"}, "api.roles must be a list"),
        ({"inputSchema": {"type": "nonsense"}}, "api.inputSchema is not a valid JSON Schema"),
        ({"colour": "red"}, "unknown fields: colour"),
        # An admin form's JSON has no nesting limit; a schema ~400 levels deep was a 500.
        ({"inputSchema": _nested({"type": "object"}, 400)}, "nests more than 100 levels"),
    ],
)
def test_bad_api_settings_are_explained(document, message):
    assert any(message in error for error in api_errors(document))


def test_names_used_in_urls_cannot_contain_a_slash(db):
    application = Application(name="Sales/EU")
    with pytest.raises(ValidationError, match="cannot contain '/'"):
        application.full_clean()
    flow = Flow(application=Application.objects.create(name="Sales"), name="a/b")
    with pytest.raises(ValidationError, match="cannot contain '/'"):
        flow.full_clean()


def test_settings_read_per_call_skip_the_metaschema_but_not_the_shape(db):
    # Saved settings were checked in full; per call only what reading them relies on.
    odd_schema = Flow(api={"enabled": True, "inputSchema": {"type": "nonsense"}})
    assert odd_schema.api_settings.enabled
    not_an_object = Flow(api={"enabled": True, "inputSchema": "a string"})
    assert not not_an_object.api_settings.enabled
