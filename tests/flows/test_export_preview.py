"""An export's first page previewed from its admin page, against a real local server."""

import pytest
from django.contrib.auth.models import Permission
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


ECHOED_KEY = "Zq8-echoed-api-key-31"


@pytest.fixture
def echoing_export(local_api, httpserver) -> Export:
    """An API that quotes the key it was sent in its records (as /me pages and httpbin do)."""
    local_api.auth_type = local_api.AuthType.API_KEY_HEADER
    local_api.header_name = "X-Api-Key"
    local_api.set_secrets(api_key=ECHOED_KEY)
    local_api.save()
    httpserver.expect_request("/whoami").respond_with_json(
        {"data": [{"you_sent": ECHOED_KEY, "quoted": f"key={ECHOED_KEY};"}]}
    )
    return Export.objects.create(
        name="Who am I", connection=local_api, relative_uri="/whoami", resource_path="data"
    )


def test_the_preview_never_shows_the_connection_s_secret_an_api_quotes_back(
    admin_client, echoing_export
):
    """Found by an outside security probe: the preview showed it in clear text."""
    html = preview(admin_client, echoing_export)

    assert "(HTTP 200)" in html
    assert ECHOED_KEY not in html
    assert "[redacted]" in html


def test_who_may_only_look_at_an_export_cannot_send_its_credentials(
    client, django_user_model, echoing_export, httpserver
):
    viewer = django_user_model.objects.create_user("auditor", password="x", is_staff=True)
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_export", "view_connection"])
    )
    client.force_login(viewer)

    response = client.post(f"/admin/flows/export/{echoing_export.pk}/preview/", {})

    assert response.status_code == 302
    assert httpserver.log == []
