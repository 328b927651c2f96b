"""An export's first page previewed from its admin page, against a real local server."""

import pytest
from django.utils.html import escape

from apps.flows.models import Export

pytestmark = pytest.mark.django_db


def preview(admin_client, export, variables="{}") -> str:
    url = f"/admin/flows/export/{export.pk}/preview/"
    return admin_client.post(url, {"variables": variables}).content.decode()


def test_the_first_page_is_read_through_the_resource_path_with_variables(
    admin_client, local_api, httpserver
):
    httpserver.expect_request("/leads", query_string="region=EU").respond_with_json(
        {"data": [{"company": f"Company {n}"} for n in range(25)], "next": "/leads?page=2"}
    )
    export = Export.objects.create(
        name="Leads",
        connection=local_api,
        relative_uri="/leads",
        resource_path="data",
        query={"region": "{{variables.region}}"},
    )

    html = preview(admin_client, export, '{"region": "EU"}')

    assert "25 records on the first page (HTTP 200); the first 20 shown" in html
    assert escape('"company": "Company 0"') in html
    assert escape('"company": "Company 20"') not in html
    assert len(httpserver.log) == 1  # the first page only


def test_a_failing_export_says_why(admin_client, local_api, httpserver):
    httpserver.expect_request("/leads").respond_with_json({"error": "no"}, status=403)
    export = Export.objects.create(name="Leads", connection=local_api, relative_uri="/leads")
    html = preview(admin_client, export)
    assert "Not read: HTTP 403" in html


def test_the_export_page_links_to_its_preview(admin_client, local_api):
    export = Export.objects.create(name="Leads", connection=local_api, relative_uri="/leads")
    html = admin_client.get(f"/admin/flows/export/{export.pk}/change/").content.decode()
    assert f'href="/admin/flows/export/{export.pk}/preview/"' in html
