"""The "Endpoint" panel of a flow's admin page: URLs, curl, example payload, Try it."""

import html
import json
import re

import pytest
from django.conf import settings

from apps.flows.models import Application, Flow


@pytest.fixture
def sales(db) -> Application:
    return Application.objects.create(name="Sales Team")


def change_page(client, flow: Flow) -> str:
    response = client.get(f"/admin/flows/flow/{flow.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def panel_of(page: str) -> str:
    match = re.search(r'<fieldset[^>]*id="endpoint-panel".*?</fieldset>', page, re.S)
    assert match, "no endpoint panel"
    return match.group(0)


def test_an_api_flow_shows_its_urls_curl_payload_and_try_it(admin_client, sales):
    flow = Flow.objects.create(
        application=sales,
        name="Hot leads",
        api={
            "enabled": True,
            "method": "POST",
            "path": "/leads",
            "mode": "auto",
            "timeout": 2500,
            "roles": ["Sales"],
            "inputSchema": {
                "type": "object",
                "properties": {"company": {"type": "string", "examples": ["O'Hara & Co"]}},
            },
        },
    )
    panel = panel_of(change_page(admin_client, flow))
    text = html.unescape(panel)
    resource = "http://testserver/api/resources/leads"
    trigger = "http://testserver/api/1/action/Sales%20Team/Hot%20leads/trigger"
    assert resource in text
    assert trigger in text
    # curl, with the key header and the example body quoted for a shell.
    assert f"curl -X POST {resource}" in text
    assert "curl -X POST http://testserver/api/1/action/Sales%20Team/Hot%20leads/trigger" in text
    assert '-H "Authorization: Bearer $FLOWSITE_KEY"' in text
    assert """-d '{"company": "O'"'"'Hara & Co"}'""" in text
    # The example payload, generated from the input schema.
    payload = re.search(r'<textarea id="endpoint-payload"[^>]*>(.*?)</textarea>', panel, re.S)
    assert json.loads(html.unescape(payload.group(1))) == {"company": "O'Hara & Co"}
    # How it answers.
    assert "auto: waits up to 2500 ms" in text
    assert "only members of Sales" in text
    assert "not allowed" in text
    # One Try-it button per way of calling it, same-origin paths.
    buttons = re.findall(r'<button type="button" class="button endpoint-try"([^>]*)>', panel)
    assert [
        (re.search(r'data-method="(\w+)"', b).group(1), re.search(r'data-url="([^"]*)"', b)[1])
        for b in buttons
    ] == [
        ("POST", "/api/resources/leads"),
        ("GET", "/api/1/action/Sales%20Team/Hot%20leads/trigger?company=O%27Hara+%26+Co"),
        ("POST", "/api/1/action/Sales%20Team/Hot%20leads/trigger"),
    ]
    # The call is made to the button's URL, with the payload as edited (its query for a
    # GET: tests/browser/test_flow_page.py drives it in Chromium), by a script of its own
    # that the page's Content-Security-Policy allows, with the CSRF cookie's name.
    assert 'data-csrf-cookie-name="csrftoken"' in panel
    assert 'src="/static/flows/endpoint_panel.js"' in panel
    script = (settings.BASE_DIR / "apps/flows/static/flows/endpoint_panel.js").read_text()
    assert "X-CSRFToken" in script
    assert "var url = button.dataset.url;" in script
    assert "fetch(url, options)" in script


def test_a_get_flow_without_schema_sends_no_body(admin_client, sales):
    flow = Flow.objects.create(
        application=sales, name="Ping", api={"enabled": True, "allowAnonymous": True}
    )
    text = html.unescape(panel_of(change_page(admin_client, flow)))
    assert "curl http://testserver/api/1/action/Sales%20Team/Ping/trigger \\" in text
    assert "allowed (an API key is optional)" in text
    assert "/api/resources" not in text.split("How it answers")[0]


def test_a_flow_without_api_explains_how_to_enable_it(admin_client, sales):
    flow = Flow.objects.create(application=sales, name="Nightly sync")
    panel = panel_of(change_page(admin_client, flow))
    assert "not callable over HTTP" in panel
    assert "endpoint-try" not in panel
    example = re.search(r'<pre class="endpoint-enable-example">(.*?)</pre>', panel, re.S)
    document = json.loads(html.unescape(example.group(1)))
    assert document["enabled"] is True
    assert document["path"] == "/nightly-sync"


def test_the_add_page_shows_how_to_enable_it(admin_client):
    page = admin_client.get("/admin/flows/flow/add/").content.decode()
    assert "not callable over HTTP" in panel_of(page)


def test_a_malicious_flow_name_is_escaped(admin_client):
    evil = Application.objects.create(name="<b>App</b>")
    flow = Flow.objects.create(
        application=evil,
        name="<script>alert(1)</script>",
        description="<img src=x onerror=alert(2)>",
        api={"enabled": True, "roles": ["<i>r</i>"], "path": "/evil"},
    )
    page = change_page(admin_client, flow)
    assert "<script>alert(1)</script>" not in page
    assert "<img src=x" not in page
    assert "<i>r</i>" not in page
    assert "<b>App</b>" not in page
    assert "%3Cscript%3Ealert%281%29%3C/script%3E/trigger" in panel_of(page)
