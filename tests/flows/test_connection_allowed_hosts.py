"""A connection's allowed private hosts in the admin: one host or network a line, no JSON."""

import re

from apps.flows.models import Connection

ADD = "/admin/flows/connection/add/"
FORM = {
    "name": "ERP",
    "type": "http",
    "base_uri": "https://erp.internal",
    "headers": "{}",
    "auth_type": "none",
    "header_name": "X-API-Key",
    "concurrency": 1,
}


def textarea(html: str, name: str) -> str:
    found = re.search(rf'<textarea name="{name}"[^>]*>\n?(.*?)</textarea>', html, re.S)
    assert found, f"no textarea {name}"
    return found.group(1)


def test_allowed_hosts_are_typed_one_a_line_and_stored_as_a_list(admin_client):
    hosts = "erp.internal\n\n  10.1.0.0/16  \r\nfd00::/8\n"

    response = admin_client.post(ADD, {**FORM, "allowed_private_hosts": hosts})

    assert response.status_code == 302, response.content.decode()[:3000]
    connection = Connection.objects.get(name="ERP")
    assert connection.allowed_private_hosts == ["erp.internal", "10.1.0.0/16", "fd00::/8"]


def test_allowed_hosts_are_shown_back_one_a_line(admin_client):
    connection = Connection.objects.create(
        name="ERP",
        base_uri="https://erp.internal",
        allowed_private_hosts=["erp.internal", "10.1.0.0/16"],
    )

    html = admin_client.get(f"/admin/flows/connection/{connection.pk}/change/").content.decode()

    assert textarea(html, "allowed_private_hosts") == "erp.internal\n10.1.0.0/16"
    assert "[" not in textarea(html, "allowed_private_hosts")


def test_no_allowed_hosts_is_an_empty_box_and_an_empty_list(admin_client):
    assert textarea(admin_client.get(ADD).content.decode(), "allowed_private_hosts") == ""

    response = admin_client.post(ADD, {**FORM, "allowed_private_hosts": "  \n"})

    assert response.status_code == 302
    assert Connection.objects.get(name="ERP").allowed_private_hosts == []


def test_an_invalid_network_is_refused_with_the_guards_message_and_the_lines_kept(admin_client):
    response = admin_client.post(
        ADD, {**FORM, "allowed_private_hosts": "erp.internal\n10.0.0.0/33"}
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["allowed_private_hosts"]
    assert errors == [
        "Invalid allowed private host '10.0.0.0/33': '10.0.0.0/33' does not appear to be an "
        "IPv4 or IPv6 network. Use a host name or a network in CIDR notation such as 10.0.0.0/8."
    ]
    assert (
        textarea(response.content.decode(), "allowed_private_hosts") == "erp.internal\n10.0.0.0/33"
    )
    assert not Connection.objects.filter(name="ERP").exists()


def test_a_connection_saved_unchanged_keeps_its_hosts(admin_client):
    connection = Connection.objects.create(
        name="ERP", base_uri="https://erp.internal", allowed_private_hosts=["erp.internal"]
    )
    url = f"/admin/flows/connection/{connection.pk}/change/"
    shown = textarea(admin_client.get(url).content.decode(), "allowed_private_hosts")

    response = admin_client.post(url, {**FORM, "allowed_private_hosts": shown})

    assert response.status_code == 302, response.content.decode()[:3000]
    connection.refresh_from_db()
    assert connection.allowed_private_hosts == ["erp.internal"]


def test_the_management_api_still_takes_a_list_and_refuses_anything_else(admin_user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(admin_user)
    document = {"name": "ERP", "type": "http", "http": {"baseURI": "https://erp.internal"}}

    good = {**document, "http": {**document["http"], "allowedPrivateHosts": ["10.1.0.0/16"]}}
    created = client.post("/api/v1/connections", good, format="json")
    assert created.status_code == 201, created.json()
    assert Connection.objects.get(name="ERP").allowed_private_hosts == ["10.1.0.0/16"]

    bad = {**good, "name": "ERP 2", "http": {**good["http"], "allowedPrivateHosts": [5]}}
    refused = client.post("/api/v1/connections", bad, format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"] == [
        {"pointer": "#/http/allowedPrivateHosts", "detail": "A list of host names or networks."}
    ]
