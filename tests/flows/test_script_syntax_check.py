"""The script editor's syntax check before save: the admin endpoint it posts the source to,
and the editor on the script page."""

import pytest
from django.utils.html import escape

from apps.accounts.models import User
from apps.flows.models import Script

pytestmark = pytest.mark.django_db

URL = "/admin/flows/script/check-syntax/"
GOOD = "function main(ctx) {\n  return ctx.records;\n}"
BAD = "function main(ctx) {\n  return ctx.records;\n  var x = ;\n}"


@pytest.fixture
def script_editor(db):
    """A staff account that may add and change scripts, and nothing else."""
    from django.contrib.auth.models import Permission

    user = User.objects.create_user("editor", password="editor-pass-123", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="flows", codename__in=["add_script", "change_script"]
        )
    )
    return user


def test_a_sound_script_passes_the_check(admin_client):
    answer = admin_client.post(URL, {"source": GOOD})
    assert answer.status_code == 200
    assert answer.json() == {"ok": True}


def test_a_syntax_error_is_answered_with_its_message_and_line(admin_client):
    answer = admin_client.post(URL, {"source": BAD}).json()
    assert answer["ok"] is False
    assert answer["line"] == 3
    assert answer["error"].startswith("SyntaxError")
    assert answer["error"].endswith("(line 3)")


def test_the_check_says_what_the_form_says_on_save(admin_client):
    answer = admin_client.post(URL, {"source": BAD}).json()
    page = admin_client.post(
        "/admin/flows/script/add/", {"name": "Bad", "language": "javascript", "content": BAD}
    )
    assert page.status_code == 200  # refused, shown again
    assert escape(answer["error"]) in page.content.decode()
    assert not Script.objects.exists()


def test_an_account_that_may_edit_scripts_may_check(client, script_editor):
    client.force_login(script_editor)
    assert client.post(URL, {"source": GOOD}).json() == {"ok": True}


def test_an_anonymous_caller_is_sent_to_the_login_page(client):
    answer = client.post(URL, {"source": GOOD})
    assert answer.status_code == 302
    assert answer["Location"].startswith("/admin/login/")


def test_staff_without_script_permissions_is_refused(client, outsider):
    client.force_login(outsider)
    answer = client.post(URL, {"source": GOOD})
    assert answer.status_code == 403
    assert "ok" not in answer.json()


def test_only_post_is_answered(admin_client):
    assert admin_client.get(URL).status_code == 405


def test_the_script_page_has_the_editor_and_its_assets(admin_client):
    script = Script.objects.create(name="Shout", content=GOOD)
    html = admin_client.get(f"/admin/flows/script/{script.pk}/change/").content.decode()
    assert 'class="code-editor"' in html
    assert f'data-check-url="{URL}"' in html
    for asset in ("codemirror/codemirror.js", "codemirror/javascript.js", "code_editor.js"):
        assert f"/static/flows/{asset}" in html
    assert "return ctx.records;" in html  # still a textarea with the source: works without JS


def test_the_editor_assets_are_served(client):
    # whitenoise (DEBUG: from the app folders) serves the committed files; no CDN.
    for asset in ("codemirror/codemirror.js", "codemirror/codemirror.css", "code_editor.js"):
        response = client.get(f"/static/flows/{asset}")
        assert response.status_code == 200, asset
