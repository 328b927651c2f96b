"""A template's instance made in real Chromium (seed 000's "Create Instance"): the form's
variables as rows and its connection picked by name, the instance's page and its Update from
template button, and the template's page listing the instances with their ids (the picture
in README: docs/flow-instances.png)."""

import json
from pathlib import Path

import pytest

from apps.flows.models import Application, Connection, Export, Flow, Script
from tests.browser.test_flow_rows import sign_in

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

DOCS = Path(__file__).parents[2] / "docs"


def test_a_builder_creates_an_instance_and_finds_it_on_the_template_page(
    page, live_server, httpserver
):
    httpserver.expect_request("/acme/accounts").respond_with_json([{"name": "Acme"}])
    sales = Application.objects.create(name="Sales")
    crm = Connection.objects.create(name="CRM", base_uri="https://crm.example.com")
    Connection.objects.create(
        name="CRM (Acme)",
        base_uri=httpserver.url_for("/acme"),
        allowed_private_hosts=["localhost", "127.0.0.1"],
    )
    export = Export.objects.create(
        application=sales, name="Accounts", connection=crm, relative_uri="/accounts"
    )
    script = Script.objects.create(
        application=sales,
        name="prepareResponse",
        content="function main(ctx) { return {statusCode: 200, result: ctx.variables.greeting}; }",
    )
    template = Flow.objects.create(
        application=sales,
        name="Simple FaaR",
        is_template=True,
        page_generators=[{"_exportId": str(export.pk)}],
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
        variables={"greeting": "Hello"},
        api={"enabled": True, "method": "GET", "path": "/greeting"},
    )
    sign_in(page, live_server.url)

    page.goto(f"{live_server.url}/admin/flows/flow/{template.pk}/change/")
    assert "No instance yet" in page.inner_text(".field-instances_panel")
    page.click("#create-instance")
    page.fill("#id_name", "Simple FaaR instance")
    page.fill("#id_variable_rows tbody tr:nth-child(1) [name=variable_rows-value]", "Bonjour")
    page.select_option(f"#id_connection_{crm.pk}", label="CRM (Acme)")
    page.click("#create-instance-submit")

    page.wait_for_selector("#update-from-template")
    instance = Flow.objects.get(name="Simple FaaR instance")
    assert f"Created instance Simple FaaR instance (_id {instance.pk})" in page.inner_text(
        ".messagelist"
    )
    assert instance.variables == {"greeting": "Bonjour"}
    acme = Connection.objects.get(name="CRM (Acme)")
    assert instance.connection_map == {str(crm.pk): str(acme.pk)}
    curl = page.inner_text(".endpoint-curl")
    assert f"Elements-Formula-Instance-Id: {instance.pk}" in curl

    template.description = "v2"
    template.save()
    page.click("#update-from-template")
    page.wait_for_selector(".messagelist")
    assert "Updated 1 instance(s) from their template" in page.inner_text(".messagelist")
    instance.refresh_from_db()
    assert (instance.description, instance.variables) == ("v2", {"greeting": "Bonjour"})

    page.goto(f"{live_server.url}/admin/flows/flow/{template.pk}/change/")
    panel = page.inner_text(".field-instances_panel")
    assert str(instance.pk) in panel
    assert f"Elements-Formula-Instance-Id: {instance.pk}" in panel
    # Try it on the template's panel names the instance: its answer, not the template's 409.
    page.click(".endpoint-call .endpoint-try")
    page.wait_for_function(  # a function: a string expression is eval'ed, which CSP refuses
        "() => document.querySelector('.endpoint-status').textContent.startsWith('200')"
    )
    assert json.loads(page.inner_text(".endpoint-response")) == "Bonjour"
    page.locator(".field-instances_panel").scroll_into_view_if_needed()
    page.set_viewport_size({"width": 1200, "height": 900})
    page.locator(".field-instances_panel").screenshot(path=str(DOCS / "flow-instances.png"))
