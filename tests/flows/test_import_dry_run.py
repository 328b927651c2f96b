"""An import's request shown for sample records from its admin page, and not sent."""

import pytest
from django.utils.html import escape

from apps.flows.models import Import

pytestmark = pytest.mark.django_db


def dry_run(admin_client, record_import, records, variables="{}") -> str:
    url = f"/admin/flows/import/{record_import.pk}/dry-run/"
    return admin_client.post(url, {"records": records, "variables": variables}).content.decode()


def test_the_request_for_one_record_is_rendered_and_not_sent(admin_client, local_api, httpserver):
    record_import = Import.objects.create(
        name="Upsert lead",
        connection=local_api,
        method="PUT",
        relative_uri="/leads/{{record.id}}",
        headers={"X-Region": "{{variables.region}}"},
        body={"name": "{{record.company}}", "hot": True},
    )

    html = dry_run(
        admin_client, record_import, '[{"id": 7, "company": "Acme"}, {"id": 8}]', '{"region": "EU"}'
    )

    assert "The request for 1 record (not sent)" in html
    assert f"PUT {local_api.base_uri}/leads/7" in html
    assert "X-Region: EU" in html
    assert escape('"name": "Acme"') in html
    assert len(httpserver.log) == 0  # nothing was sent


def test_a_batch_import_shows_its_first_batch(admin_client, local_api):
    record_import = Import.objects.create(
        name="Bulk", connection=local_api, relative_uri="/bulk", batch_size=2
    )
    html = dry_run(admin_client, record_import, '[{"n": 1}, {"n": 2}, {"n": 3}]')
    assert "The request for 2 records (not sent)" in html
    shown = html.split('class="import-request"', 1)[1].split("</pre>", 1)[0]
    assert escape('"n": 2') in shown
    assert escape('"n": 3') not in shown


def test_the_import_page_links_to_its_dry_run(admin_client, local_api):
    record_import = Import.objects.create(name="Bulk", connection=local_api, relative_uri="/b")
    html = admin_client.get(f"/admin/flows/import/{record_import.pk}/change/").content.decode()
    assert f'href="/admin/flows/import/{record_import.pk}/dry-run/"' in html
