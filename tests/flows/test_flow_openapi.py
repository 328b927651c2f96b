"""Each API-enabled flow is documented in the OpenAPI schema with its own operations."""

import pytest
from django.db import DatabaseError
from drf_spectacular.validation import validate_schema

from apps.flows import openapi
from apps.flows.models import Application, Flow

TRIGGER = "/api/1/action/{}/{}/trigger"
GREETING_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "examples": ["Ada"]}},
    "required": ["name"],
}
LEAD_SCHEMA = {
    "$defs": {"rating": {"enum": ["Hot", "Warm", "Cold"]}},
    "type": "object",
    "properties": {
        "company": {"type": "string"},
        "employees": {"type": ["integer", "null"], "exclusiveMinimum": 0},
        "rating": {"$ref": "#/$defs/rating"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "vip": {"type": "boolean", "default": False},
    },
    "required": ["company"],
}


@pytest.fixture
def flows(db):
    stats = Application.objects.create(name="Stats")
    sales = Application.objects.create(name="Sales Team")
    greeting = Flow.objects.create(
        application=stats,
        name="Greeting",
        description="Says hello.",
        api={
            "enabled": True,
            "method": "GET",
            "path": "/greeting",
            "mode": "sync",
            "timeout": 5000,
            "inputSchema": GREETING_SCHEMA,
        },
    )
    leads = Flow.objects.create(
        application=sales,
        name="Hot leads",
        api={
            "enabled": True,
            "mode": "async",
            "allowAnonymous": True,
            "roles": ["Sales"],
            "outputName": "Leads",
            "inputSchema": LEAD_SCHEMA,
        },
    )
    hidden = Flow.objects.create(
        application=stats, name="Nightly", api={"enabled": False, "path": "/nightly"}
    )
    return greeting, leads, hidden


@pytest.fixture
def client(admin_client):
    """The schema is served to signed-in callers only."""
    return admin_client


def schema_of(client) -> dict:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def flow_paths(schema: dict) -> dict[str, set[str]]:
    return {
        path: set(item)
        for path, item in schema["paths"].items()
        if any("x-flowsite-flow-id" in operation for operation in item.values())
    }


def test_exactly_the_enabled_flows_are_listed_with_their_methods(client, flows):
    greeting, leads, hidden = flows
    assert hidden.api_enabled is False
    schema = schema_of(client)
    assert flow_paths(schema) == {
        "/api/resources/greeting": {"get"},
        TRIGGER.format("Stats", "Greeting"): {"get", "post"},
        TRIGGER.format("Sales%20Team", "Hot%20leads"): {"get", "post"},
    }
    assert "/api/resources/nightly" not in schema["paths"]
    assert not any("Nightly" in path for path in schema["paths"])
    validate_schema(schema)
    ids = [op["operationId"] for item in schema["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert f"flow_{greeting.pk}_resource" in ids
    assert f"flow_{leads.pk}_trigger_post" in ids


def test_a_sync_get_resource(client, flows):
    greeting = flows[0]
    operation = schema_of(client)["paths"]["/api/resources/greeting"]["get"]
    assert operation["operationId"] == f"flow_{greeting.pk}_resource"
    assert operation["tags"] == ["Stats"]
    assert operation["summary"] == "Greeting"
    assert "Says hello." in operation["description"]
    assert "5000 ms" in operation["description"]
    assert "not allowed" in operation["description"]
    assert "requestBody" not in operation
    name = next(p for p in operation["parameters"] if p["name"] == "name")
    assert name == {
        "name": "name",
        "in": "query",
        "required": True,
        "schema": {"type": "string", "example": "Ada"},
        "example": "Ada",
    }
    assert {p["name"] for p in operation["parameters"]} >= {"timeout", "Idempotency-Key"}
    responses = operation["responses"]
    assert set(responses) == {
        "200",
        "202",
        "400",
        "401",
        "403",
        "404",
        "409",
        "422",
        "429",
        "500",
        "502",
        "503",
        "504",
    }
    envelope = responses["200"]["content"]["application/json"]["examples"]["Envelope"]["value"]
    assert envelope["data"] == {"records": [{"name": "Ada"}]}
    invalid = responses["400"]["content"]["application/problem+json"]
    assert invalid["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert invalid["examples"]["InvalidInput"]["value"]["errors"] == [
        {"pointer": "#", "detail": "'name' is a required property"}
    ]
    assert operation["security"] == [{"apiKey": []}]


def test_an_async_trigger_with_a_body_naming_roles_needs_a_key_despite_allow_anonymous(
    client, flows
):
    """A flow that names roles is never anonymous (an outside probe called one by leaving
    its key out)."""
    leads = flows[1]
    item = schema_of(client)["paths"][TRIGGER.format("Sales%20Team", "Hot%20leads")]
    post, get = item["post"], item["get"]
    assert post["operationId"] == f"flow_{leads.pk}_trigger_post"
    assert get["operationId"] == f"flow_{leads.pk}_trigger_get"
    assert post["tags"] == ["Sales Team"]
    assert "async" in post["description"]
    assert "Sales" in post["description"]
    assert "200" not in post["responses"]
    assert "504" not in post["responses"]
    assert {"202", "400", "401", "403", "404", "409", "413", "429"} <= set(post["responses"])
    assert post["security"] == [{"apiKey": []}]

    body = post["requestBody"]["content"]["application/json"]
    assert body["schema"] == {
        "type": "object",
        "required": ["company"],
        "properties": {
            "company": {"type": "string"},
            "employees": {
                "nullable": True,
                "type": "integer",
                "minimum": 0,
                "exclusiveMinimum": True,
            },
            "rating": {"enum": ["Hot", "Warm", "Cold"]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "vip": {"type": "boolean", "default": False},
        },
    }
    assert body["examples"]["Input"]["value"] == {
        "company": "string",
        "employees": 1,
        "rating": "Hot",
        "tags": ["string"],
        "vip": False,
    }
    accepted = post["responses"]["202"]["content"]["application/json"]["examples"]
    assert accepted["Accepted"]["value"]["pollUrl"].startswith(
        "/api/1/action/Sales%20Team/Hot%20leads/poll/"
    )
    assert "Location" in post["responses"]["202"]["headers"]
    roles = post["responses"]["403"]["content"]["application/problem+json"]["examples"]
    assert roles["RoleRequired"]["value"]["roles"] == ["Sales"]
    # GET carries the input schema's properties as query parameters.
    assert "requestBody" not in get
    assert {p["name"] for p in get["parameters"] if p["in"] == "query"} == {
        "company",
        "employees",
        "rating",
        "tags",
        "vip",
        "timeout",
    }


def test_every_flow_response_has_an_example(client, flows):
    schema = schema_of(client)
    for path in flow_paths(schema):
        for operation in schema["paths"][path].values():
            for code, response in operation["responses"].items():
                media = next(iter(response["content"].values()))
                assert media.get("examples"), (path, code)


def test_the_catalog_is_read_with_one_query(client, flows, django_assert_num_queries):
    with django_assert_num_queries(3):  # the flows, inside a savepoint of the test's atomic
        result = openapi.add_flow_operations({"paths": {}}, None, None, public=True)
    assert len(result["paths"]) == 3


def test_no_database_leaves_the_schema_as_it_is(monkeypatch):
    def broken():
        raise DatabaseError("no such table: flows_flow")

    monkeypatch.setattr(openapi, "_api_flows", broken)
    result = {"paths": {"/x": {}}}
    assert openapi.add_flow_operations(result, None, None, public=True) == {"paths": {"/x": {}}}


@pytest.mark.parametrize(
    ("schema", "example"),
    [
        (None, {}),
        ({"type": "string"}, "string"),
        ({"type": "integer"}, 0),
        ({"type": "boolean"}, True),
        ({"type": "string", "format": "date"}, "2024-01-31"),
        ({"type": "string", "example": "x"}, "x"),
        ({"type": "string", "default": "d", "enum": ["a"]}, "d"),
        ({"enum": ["a", "b"]}, "a"),
        ({"const": 3}, 3),
        ({"type": "integer", "exclusiveMinimum": 0}, 1),
        ({"type": "number", "minimum": 2.5}, 2.5),
        ({"type": "array", "items": {"type": "number"}}, [0]),
        (
            {"properties": {"a": {"type": "object", "properties": {"b": {}}}}},
            {"a": {"b": "string"}},
        ),
        ({"anyOf": [{"type": "integer"}, {"type": "string"}]}, 0),
        (
            {"allOf": [{"properties": {"a": {}}}, {"properties": {"b": {}}}]},
            {"a": "string", "b": "string"},
        ),
        ({"$defs": {"n": {"$ref": "#/$defs/n"}}, "$ref": "#/$defs/n"}, None),
    ],
)
def test_example_generator(schema, example):
    assert openapi.example_for(schema) == example
