"""A browser asking a management resource for HTML gets the browsable API's page, not a 500
(found by an outside probe: every resource without a DRF serializer failed)."""

import pytest

from apps.flows.models import Connection, Export, Flow, Script

pytestmark = pytest.mark.django_db
HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def resources(application):
    connection = Connection.objects.create(name="CRM", base_uri="https://crm.example.com")
    export = Export.objects.create(name="Leads", connection=connection, relative_uri="/leads")
    script = Script.objects.create(name="s", content="function main(ctx) { return 1; }")
    flow = Flow.objects.create(application=application, name="f")
    return {
        "flows": flow.pk,
        "integrations": application.pk,
        "connections": connection.pk,
        "exports": export.pk,
        "scripts": script.pk,
    }


@pytest.mark.parametrize("kind", ["flows", "integrations", "connections", "exports", "scripts"])
def test_a_browser_gets_each_resource_and_its_list_as_a_page(admin_client, resources, kind):
    for url in (f"/api/v1/{kind}", f"/api/v1/{kind}/{resources[kind]}"):
        response = admin_client.get(url, HTTP_ACCEPT=HTML)

        assert response.status_code == 200, (url, response.content[:500])
        assert response["Content-Type"].startswith("text/html")
