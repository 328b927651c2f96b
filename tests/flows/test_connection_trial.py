"""A connection tried from its admin page: one GET with its authentication, against a real
local server; what came back, or why not (the SSRF rule explained, a refused login)."""

import pytest
from django.utils.html import escape

from apps.flows.models import Connection

pytestmark = pytest.mark.django_db
TOKEN = "s3cr3t-token-value"


def trial(admin_client, connection, path="/me") -> str:
    url = f"/admin/flows/connection/{connection.pk}/test/"
    return admin_client.post(url, {"path": path}).content.decode()


def test_a_reachable_connection_answers_with_its_status_and_no_secret(
    admin_client, local_api, httpserver
):
    local_api.auth_type = Connection.AuthType.BEARER
    local_api.set_secrets(token=TOKEN)
    local_api.save()
    httpserver.expect_request(
        "/me", headers={"Authorization": f"Bearer {TOKEN}"}
    ).respond_with_json({"user": "integration", "echo": TOKEN})

    html = trial(admin_client, local_api)

    assert "Reached: HTTP 200" in html
    assert escape('"user":"integration"') in html.replace(" ", "")
    assert TOKEN not in html  # the answer quoted the token: it is left out


@pytest.mark.parametrize("count", [1326, 1327, 1330])
def test_a_quoted_token_after_wide_characters_is_not_half_shown(
    admin_client, local_api, httpserver, count
):
    """The body was cut by bytes before the redaction: after ~1,300 three-byte characters,
    the cut fell inside the token and its first part was shown (an outside probe)."""
    local_api.auth_type = Connection.AuthType.BEARER
    local_api.set_secrets(token=TOKEN)
    local_api.save()
    httpserver.expect_request("/me").respond_with_data("中" * count + f" Bearer {TOKEN}")

    html = trial(admin_client, local_api)

    assert "Reached: HTTP 200" in html
    assert TOKEN[:6] not in html


def test_a_refused_login_says_so_with_the_status(admin_client, local_api, httpserver):
    httpserver.expect_request("/me").respond_with_json({"error": "bad token"}, status=401)
    html = trial(admin_client, local_api)
    assert "Not reached: HTTP 401" in html


def test_a_private_address_is_refused_and_the_rule_explained(admin_client, httpserver):
    connection = Connection.objects.create(
        name="Not allowed", base_uri=httpserver.url_for("/").rstrip("/")
    )
    html = trial(admin_client, connection)
    assert "Not reached" in html
    assert "FLOWSITE_ALLOW_PRIVATE_NETWORKS" in html
    assert len(httpserver.log) == 0  # nothing was sent


def test_the_connection_page_links_to_its_test(admin_client, local_api):
    html = admin_client.get(f"/admin/flows/connection/{local_api.pk}/change/").content.decode()
    assert f'href="/admin/flows/connection/{local_api.pk}/test/"' in html
