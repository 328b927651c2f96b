"""A key restricted to flows calls those flows and nothing else of the API."""

from rest_framework.test import APIClient

from apps.accounts.privileges import Privilege
from apps.accounts.services import create_api_key
from apps.flows.models import Flow, Script
from apps.surface.services import configure_surface
from tests.conftest import grant


def test_a_key_restricted_to_a_flow_cannot_use_the_management_jobs_or_surface_apis(
    application, integration, callers_role
):
    grant(
        callers_role,
        Privilege.MANAGE_FLOWS,
        Privilege.VIEW_EXECUTIONS,
        Privilege.EXECUTE_OPERATIONS,
        Privilege.QUERY_VIEWS,
    )
    configure_surface(execute=True, query=True, integration_accounts=[integration])
    script = Script.objects.create(
        name="hello", content="function main(ctx) { return {statusCode: 200, result: 'hi'} }"
    )
    flow = Flow.objects.create(
        application=application,
        name="hello",
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
        api={"enabled": True, "method": "GET", "path": "/hello"},
    )
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Bearer {create_api_key(owner=integration, flows=[flow]).plaintext}"
    )
    assert client.get("/api/resources/hello").status_code == 200  # what it is for
    for method, url in (
        ("get", "/api/v1/flows"),
        ("get", f"/api/v1/flows/{flow.pk}"),
        ("delete", f"/api/v1/flows/{flow.pk}"),
        ("get", "/api/v1/jobs"),
        ("get", "/api/v1/surface"),
        ("get", "/api/rest/query/Usage%20Stats/Anything"),
        ("post", "/api/rest/execute/Usage%20Stats/Anything"),
    ):
        answer = getattr(client, method)(url)
        assert answer.status_code == 403, (method, url)
        assert answer.json()["type"].endswith("key-restricted"), (method, url)
    assert Flow.objects.filter(pk=flow.pk).exists()
