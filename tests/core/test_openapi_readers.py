"""/api/schema/ is its reader's: management paths for who may manage flows; for anyone else
what it may call (its flows, the surface it is an account of); for anonymous readers the
flows that allow anonymous calls. And what generators need: every array has items, examples
are shaped like the answers, Query() answers an array, every resource's bodies are named."""

import re

import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.accounts.privileges import Privilege
from apps.accounts.services import create_api_key
from apps.flows.models import Flow
from apps.surface.demo import install_lead_registration
from tests.conftest import grant

QUERY = "/api/rest/query/{application}/{view}"
EXECUTE = "/api/rest/execute/{application}/{operation}"
RESOURCES = (
    "integrations",
    "connections",
    "exports",
    "imports",
    "scripts",
    "flows",
    "recordTypes",
    "records",
    "operations",
    "views",
)


@pytest.fixture
def flows(application):
    def flow(name: str, is_template: bool = False, **api) -> Flow:
        return Flow.objects.create(
            application=application,
            name=name,
            api={"enabled": True, "path": f"/{name}", **api},
            is_template=is_template,
        )

    return {
        "public": flow("public", allowAnonymous=True),
        "plain": flow("plain"),
        "sales": flow("sales", roles=["Sales"]),
        "template": flow("template", is_template=True),  # only its instances answer
    }


@pytest.fixture
def demo(owner):
    """The demo surface; its integration account may execute, query and run flows."""
    grant(
        Role.objects.create(name="Integration callers"),
        Privilege.USE_API_KEY,
        Privilege.RUN_FLOWS,
        Privilege.EXECUTE_OPERATIONS,
        Privilege.QUERY_VIEWS,
    )
    return install_lead_registration(owner=owner)


def schema_of(client: APIClient) -> dict:
    answer = client.get("/api/schema/?format=json")
    assert answer.status_code == 200, answer.content
    return answer.json()


def flow_names(schema: dict) -> set[str]:
    return {
        operation["summary"]
        for item in schema["paths"].values()
        for operation in item.values()
        if "x-flowsite-flow-id" in operation
    }


def management_paths(schema: dict) -> list[str]:
    """The resources' CRUD paths (a run_flows holder still sees …/{id}/run)."""
    crud = {f"/api/v1/{r}" for r in RESOURCES} | {f"/api/v1/{r}/{{id}}" for r in RESOURCES}
    return sorted(crud & set(schema["paths"]))


def keyed(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_an_anonymous_reader_sees_only_the_flows_that_allow_anonymous_calls(
    api_client, flows, demo
):
    schema = schema_of(api_client)
    assert flow_names(schema) == {"public"}
    assert all(path.startswith(("/api/1/", "/api/resources/")) for path in schema["paths"])
    assert "apiKey" in schema["components"]["securitySchemes"]  # Swagger UI's Authorize


def test_an_anonymous_reader_without_public_flows_sees_no_path(api_client, flows):
    Flow.objects.filter(name="public").delete()
    schema = schema_of(api_client)
    assert schema["paths"] == {}
    assert "apiKey" in schema["components"]["securitySchemes"]


def test_who_may_manage_sees_the_management_api_every_flow_and_the_surface(manager, flows, demo):
    schema = schema_of(manager)
    for resource in RESOURCES:
        assert {"get", "post"} <= set(schema["paths"][f"/api/v1/{resource}"]), resource
    assert "/api/v1/jobs" in schema["paths"]
    assert {"public", "plain", "sales", "lead"} <= flow_names(schema)
    assert QUERY in schema["paths"]
    assert "/api/rest/query/Lead%20Registration/All%20Leads" in schema["paths"]


def test_an_integration_account_sees_what_it_may_call_and_no_management_path(flows, demo):
    schema = schema_of(keyed(demo.key))
    assert not management_paths(schema)
    assert "/api/v1/jobs" not in schema["paths"]  # view_executions: it holds none
    # Not "sales" (a role it lacks), nor "template" (it never answers calls itself).
    assert flow_names(schema) == {"public", "plain", "lead"}
    assert {QUERY, EXECUTE} <= set(schema["paths"])
    assert "/api/rest/execute/Lead%20Registration/Register%20Lead" in schema["paths"]


def test_the_surface_is_left_out_for_an_account_the_configuration_does_not_name(
    member, key_client, flows, demo
):
    schema = schema_of(key_client(member))
    assert not [path for path in schema["paths"] if path.startswith("/api/rest/")]
    assert flow_names(schema) == {"public", "plain", "lead"}
    assert not management_paths(schema)


def test_a_key_restricted_to_one_flow_sees_only_that_flow(member, callers_role, flows, demo):
    grant(callers_role, Privilege.MANAGE_FLOWS)
    key = create_api_key(owner=member, flows=[flows["plain"]]).plaintext
    schema = schema_of(keyed(key))
    assert flow_names(schema) == {"plain"}
    assert not [path for path in schema["paths"] if path.startswith("/api/rest/")]
    assert [path for path in schema["paths"] if path.startswith("/api/v1/")] == ["/api/v1/me"]


def test_an_account_that_may_call_no_flow_gets_no_generic_flow_endpoint(outsider, key_client):
    grant(Role.objects.create(name="Keys"), Privilege.USE_API_KEY)
    Role.objects.get(name="Keys").members.add(outsider)
    schema = schema_of(key_client(outsider))
    assert not [path for path in schema["paths"] if path.startswith(("/api/1/", "/api/res"))]


def arrays_without_items(node, where=""):
    if isinstance(node, dict):
        if node.get("type") == "array" and "items" not in node:
            yield where
        for key, value in node.items():
            yield from arrays_without_items(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from arrays_without_items(value, f"{where}/{index}")


def test_every_array_has_items_and_list_examples_are_lists_of_documents(manager, flows, demo):
    for schema in (schema_of(manager), schema_of(keyed(demo.key))):
        assert not list(arrays_without_items(schema))
        for path, item in schema["paths"].items():
            for method, operation in item.items():
                for code, answer in operation["responses"].items():
                    for content in answer.get("content", {}).values():
                        for name, example in (content.get("examples") or {}).items():
                            value = example.get("value")
                            if isinstance(value, list) and value:
                                assert not isinstance(value[0], list), (method, path, code, name)
                    if code.startswith("2"):
                        assert "application/problem+json" not in answer.get("content", {})


def test_query_answers_an_array_and_execute_an_object(manager, demo):
    paths = schema_of(manager)["paths"]
    query = paths[QUERY]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert query["type"] == "array"
    assert query["items"]["type"] == "object"
    one_view = paths["/api/rest/query/Lead%20Registration/All%20Leads"]["get"]["responses"]
    assert one_view["200"]["content"]["application/json"]["schema"]["type"] == "array"
    execute = paths[EXECUTE]["post"]["responses"]["201"]["content"]["application/json"]
    assert execute["schema"]["type"] == "object"


def test_every_resource_is_created_replaced_and_patched_with_a_named_body(manager):
    schema = schema_of(manager)
    components = schema["components"]["schemas"]
    assert components["FlowRequest"]["required"] == ["name", "_integrationId"]
    assert components["ExportRequest"]["required"] == ["name", "_connectionId"]
    for resource in RESOURCES:
        create = schema["paths"][f"/api/v1/{resource}"]["post"]["requestBody"]["content"]
        reference = create["application/json"]["schema"]["$ref"]
        name = reference.rsplit("/", 1)[-1]
        assert name.endswith("Request"), resource
        assert name in components, resource
        sent = set(components[name]["properties"])
        item = schema["paths"][f"/api/v1/{resource}/{{id}}"]
        assert item["put"]["requestBody"]["content"]["application/json"]["schema"] == {
            "$ref": reference
        }
        patch = item["patch"]["requestBody"]["content"]
        merged = patch["application/merge-patch+json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        assert set(components[merged]["properties"]) == sent, resource
        # A merge patch gives what changes; null removes a member (it takes its default).
        assert "required" not in components[merged], resource
        assert all(m["nullable"] for m in components[merged]["properties"].values()), resource
        assert patch["application/json-patch+json"]["schema"]["type"] == "array"
        answered = item["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        read = components[answered["$ref"].rsplit("/", 1)[-1]]["properties"]
        assert sent < set(read), resource  # _id, createdAt…: answered, never sent


def test_the_docs_offer_a_key_field_and_reload_the_schema_with_it(client, db):
    # Swagger UI's settings are in its script, served apart from the page (the pages'
    # Content-Security-Policy runs no inline script).
    swagger = client.get("/api/docs/").content.decode()
    assert '<script src="/api/docs/?script="></script>' in swagger
    script = client.get("/api/docs/?script=").content.decode()
    assert '"persistAuthorization": true' in script
    assert re.search(r'schemaAuthNames = \[\s*"apiKey"', script)  # Authorize fetches it again
    redoc = client.get("/api/redoc/").content.decode()
    assert 'id="api-key"' in redoc
    assert "/static/core/api_docs.js" in redoc


def test_redoc_s_schema_loads_for_a_signed_in_builder_and_with_a_key(admin_client, manager):
    assert admin_client.get("/api/redoc/").status_code == 200
    assert "/api/v1/flows" in schema_of(admin_client)["paths"]
    assert "/api/v1/flows" in schema_of(manager)["paths"]
