"""Each piece is tried on its own change page: the try-it form is there once it is saved,
posting to the try-it page (whose result the page shows in place)."""

import pytest

from apps.flows.models import Connection, Export, Import, Script

pytestmark = pytest.mark.django_db


@pytest.fixture
def pieces(application):
    crm = Connection.objects.create(name="CRM", base_uri="https://crm.example.com")
    return {
        "connection": (crm, "test", "Send the GET"),
        "export": (
            Export.objects.create(application=application, name="Leads", connection=crm),
            "preview",
            "Read the first page",
        ),
        "import": (
            Import.objects.create(application=application, name="Write", connection=crm),
            "dry-run",
            "Show the request",
        ),
        "script": (
            Script.objects.create(application=application, name="Shout", content=""),
            "test",
            "Run the script",
        ),
    }


@pytest.mark.parametrize("piece", ["connection", "export", "import", "script"])
def test_a_saved_piece_is_tried_from_its_own_page(admin_client, pieces, piece):
    obj, segment, submit = pieces[piece]
    page = admin_client.get(f"/admin/flows/{piece}/{obj.pk}/change/").content.decode()
    assert f'action="/admin/flows/{piece}/{obj.pk}/{segment}/" class="try-inline"' in page
    assert f'value="{submit}"' in page
    assert "flows/try_inline.js" in page
    own_page = admin_client.get(f"/admin/flows/{piece}/{obj.pk}/{segment}/").content.decode()
    assert f'value="{submit}"' in own_page  # one label, on both pages


@pytest.mark.parametrize("piece", ["connection", "export", "import", "script"])
def test_an_unsaved_piece_has_nothing_to_try_yet(admin_client, piece):
    assert "try-inline" not in admin_client.get(f"/admin/flows/{piece}/add/").content.decode()


def test_the_try_it_page_marks_its_result_for_the_panel(admin_client, pieces):
    script, _, _ = pieces["script"]
    script.content = "function main(ctx) { return ctx.records; }"
    script.save()
    response = admin_client.post(
        f"/admin/flows/script/{script.pk}/test/",
        {"records": '[{"a": 1}]', "function": "main", "variables": "{}"},
    )
    assert '<div id="try-it-result">' in response.content.decode()
