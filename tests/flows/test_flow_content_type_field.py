"""The flow page's API field "Content type" (api.contentType, PhixFlow's contentType output)."""

import pytest

from apps.flows.models import Flow
from tests.flows.test_flow_rows import rows_form

pytestmark = pytest.mark.django_db


def test_the_content_type_field_sets_and_shows_api_content_type(admin_client, application):
    flow = Flow.objects.create(application=application, name="Leads")
    form = rows_form(application)
    form.update(endpoint_enabled="on", endpoint_content_type=" text/csv ")
    response = admin_client.post(f"/admin/flows/flow/{flow.pk}/change/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    flow.refresh_from_db()
    assert flow.api["contentType"] == "text/csv"
    page = admin_client.get(f"/admin/flows/flow/{flow.pk}/change/").content.decode()
    assert 'name="endpoint_content_type" value="text/csv"' in page


def test_a_refused_content_type_keeps_the_page_and_says_why(admin_client, application):
    flow = Flow.objects.create(application=application, name="Leads")
    form = rows_form(application)
    form.update(endpoint_enabled="on", endpoint_content_type="text/javascript")
    response = admin_client.post(f"/admin/flows/flow/{flow.pk}/change/", form)
    assert response.status_code == 200
    assert "text/javascript is refused" in response.content.decode()
    flow.refresh_from_db()
    assert "contentType" not in flow.api


def test_an_empty_content_type_leaves_none(admin_client, application):
    flow = Flow.objects.create(
        application=application, name="Leads", api={"contentType": "text/csv"}
    )
    form = rows_form(application, {"api": '{"contentType": "text/csv"}'})
    form.update(endpoint_content_type="")
    response = admin_client.post(f"/admin/flows/flow/{flow.pk}/change/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    flow.refresh_from_db()
    assert "contentType" not in flow.api
