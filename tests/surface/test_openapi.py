"""/api/schema/ documents each REST-enabled operation and view of the surface with its own
path, a schema generated from its record type's fields, and examples; disabled ones are
left out. The added operations answer as they are documented (schemathesis)."""

import pytest
import requests
import schemathesis
from drf_spectacular.validation import validate_schema
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apps.accounts.services import create_api_key
from apps.records import services as records
from apps.surface.models import View
from tests.surface.conftest import operation

EXECUTE = "/api/rest/execute/Lead%20Registration/Register%20Lead"
UPDATE = "/api/rest/execute/Lead%20Registration/Update%20Lead"
QUERY = "/api/rest/query/Lead%20Registration/All%20Leads"


@pytest.fixture
def hidden(leads_app, lead):
    """An operation and a view with REST switched off."""
    operation(leads_app, lead, "Internal", "create", rest_execute=False)
    View.objects.create(application=leads_app, record_type=lead, name="Internal view")


def served(client) -> dict:
    answer = client.get("/api/schema/?format=json")
    assert answer.status_code == 200
    return answer.json()


def test_an_enabled_operation_has_its_own_path_with_a_schema_from_its_fields_and_an_example(
    admin_client, register_lead, update_lead, hidden
):
    schema = served(admin_client)
    operation_ = schema["paths"][EXECUTE]["post"]
    assert operation_["operationId"] == f"surface_execute_{register_lead.pk}"
    assert operation_["tags"] == ["Lead Registration"]
    body = operation_["requestBody"]["content"]["application/json"]
    properties = body["schema"]["properties"]
    assert list(properties)[:6] == [
        "RecordID",
        "ExternalTransactionId",
        "Company",
        "Rating",
        "Interests",
        "Employees",
    ]
    assert properties["RecordID"]["nullable"] is True
    assert body["schema"]["required"] == ["Company"]
    assert properties["Company"]["type"] == "string"
    assert properties["Employees"]["type"] == "integer"
    rating = properties["Rating"]["oneOf"]
    assert rating[0] == {"type": "string", "enum": ["Hot", "Warm", "Cold"]}
    assert rating[1]["properties"]["Selection"]["enum"] == ["Hot", "Warm", "Cold"]
    assert properties["Interests"]["type"] == "array"
    payload = body["examples"]["Payload"]["value"]
    assert payload["RecordID"] is None
    assert payload["Rating"] == {"Selection": "Hot"}
    assert "ExternalTransactionId" in payload
    created = operation_["responses"]["201"]["content"]["application/json"]
    assert created["examples"]["Record"]["value"]["RecordID"] == 1
    assert created["schema"]["properties"]["Rating"]["properties"]["Selection"]["enum"]
    assert "Execute() is switched off" in operation_["description"]

    update = schema["paths"][UPDATE]["post"]
    update_body = update["requestBody"]["content"]["application/json"]
    assert update_body["schema"]["required"] == ["RecordID"]
    assert "200" in update["responses"]
    assert "201" not in update["responses"]


def test_an_enabled_view_has_its_own_path_with_its_parameters_and_an_example(
    admin_client, all_leads, hidden, surface_on
):
    schema = served(admin_client)
    query = schema["paths"][QUERY]["get"]
    assert query["operationId"] == f"surface_query_{all_leads.pk}"
    names = [parameter["name"] for parameter in query["parameters"]]
    assert names == ["rating", "limit", "cursor", "since"]
    assert query["parameters"][0]["required"] is False
    answer = query["responses"]["200"]["content"]["application/json"]
    assert answer["schema"]["type"] == "array"
    assert set(answer["schema"]["items"]["properties"]) >= {"RecordID", "SubmissionId", "Company"}
    example = answer["examples"]["Records"]["value"]
    assert example[0]["Company"] == "Some text"
    assert "switched off" not in query["description"]


def test_disabled_operations_and_views_are_left_out(admin_client, register_lead, all_leads, hidden):
    paths = served(admin_client)["paths"]
    assert not [path for path in paths if "Internal" in path]
    register_lead.rest_execute = False
    register_lead.save()
    all_leads.rest_query = False
    all_leads.save()
    paths = served(admin_client)["paths"]
    assert EXECUTE not in paths
    assert QUERY not in paths


def test_the_schema_with_surface_operations_is_valid_and_every_answer_has_an_example(
    admin_client, register_lead, update_lead, delete_lead, all_leads, echo_flow
):
    update_lead.flow = echo_flow
    update_lead.save()
    schema = served(admin_client)
    validate_schema(schema)
    for path, operations in schema["paths"].items():
        if not path.startswith("/api/rest/") or "{" in path:
            continue
        for method, operation_ in operations.items():
            for code, response in operation_["responses"].items():
                media = next(iter(response["content"].values()))
                assert media.get("examples"), (method, path, code)
    assert "422" in schema["paths"][UPDATE]["post"]["responses"]  # its flow may fail


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_the_surface_operations_answer_as_documented(
    transactional_db,
    live_server,
    owner,
    restuser,
    surface_on,
    register_lead,
    update_lead,
    all_leads,
):
    records.create_record(record_type=all_leads.record_type, data={"Company": "Acme"})
    admin = {"Authorization": f"Bearer {create_api_key(owner=owner).plaintext}"}
    document = requests.get(f"{live_server.url}/api/schema/?format=json", headers=admin, timeout=30)
    document.raise_for_status()
    schema = schemathesis.openapi.from_dict(document.json())
    caller = {"Authorization": f"Bearer {create_api_key(owner=restuser).plaintext}"}
    failures = []
    tried = 0
    for result in schema.get_all_operations():
        operation_ = result.ok()
        if not operation_.path.startswith("/api/rest/") or "{" in operation_.path:
            continue
        tried += 1

        @given(case=operation_.as_strategy())
        @settings(
            max_examples=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case):
            case.call_and_validate(base_url=live_server.url, headers=caller, checks=CHECKS)

        try:
            exercise()
        except Exception as exc:
            failures.append(f"{operation_.label}: {exc}")
    assert tried == 3
    assert not failures, "\n\n".join(failures)
