"""Templates and instances in the admin (Axway's formulas, seed 000): a template is ticked on
its page; "Create an instance" asks for a name, variables as rows and connections picked by
name; the template's page lists its instances with their ids; an instance is updated from
its template with a button or an action. Django client."""

import re

from apps.flows import services
from apps.flows.models import Flow
from tests.flows.test_flow_rows import rows_form

HEADER = "Elements-Formula-Instance-Id"


def create_page(template: Flow) -> str:
    return f"/admin/flows/flow/{template.pk}/create-instance/"


def test_a_flow_is_made_a_template_on_its_page(admin_client, application):
    form = {**rows_form(application), "is_template": "on"}

    response = admin_client.post("/admin/flows/flow/add/", form)

    assert response.status_code == 302, response.context["adminform"].form.errors
    flow = Flow.objects.get(name="Leads")
    assert flow.is_template
    page = admin_client.get(f"/admin/flows/flow/{flow.pk}/change/").content.decode()
    assert 'name="is_template"' in page
    assert "No instance yet: a template never answers calls itself." in page
    assert f"/admin/flows/flow/{flow.pk}/create-instance/" in page


def test_the_create_instance_page_asks_for_rows_and_connections_by_name(
    admin_client, template, crm, crm_eu
):
    page = admin_client.get(create_page(template)).content.decode()

    assert 'name="name"' in page
    # Variables as rows, with the template's values; nothing typed as JSON.
    assert 'name="variable_rows-name" value="greeting"' in page
    assert 'name="variable_rows-value" value="Hello"' in page
    assert "<textarea" not in page.split('id="try-it-form"')[1].split("</form>")[0]
    # Each connection the template uses, picked by name, the template's chosen.
    select = re.search(rf'<select name="connection_{crm.pk}".*?</select>', page, re.S).group(0)
    assert f'<option value="{crm.pk}" selected>CRM</option>' in select
    assert f'<option value="{crm_eu.pk}">CRM (EU)</option>' in select
    assert "Connection for CRM" in page


def test_creating_an_instance_from_the_admin(admin_client, template, crm, crm_eu):
    response = admin_client.post(
        create_page(template),
        {
            "name": "Acme",
            "variable_rows-rows": "1",
            "variable_rows-name": ["greeting", "region"],
            "variable_rows-value": ["Hello", "eu"],
            f"connection_{crm.pk}": str(crm_eu.pk),
        },
    )

    instance = Flow.objects.get(name="Acme")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/flows/flow/{instance.pk}/change/"
    assert instance.template_flow == template
    assert instance.variables == {"greeting": "Hello", "region": "eu"}
    assert instance.connection_map == {str(crm.pk): str(crm_eu.pk)}
    assert (instance.api_enabled, instance.api_path, instance.disabled) == (
        True,
        "/greeting",
        False,
    )
    page = admin_client.get(response["Location"]).content.decode()
    assert f"Created instance Acme (_id {instance.pk})" in page
    assert "Update from template" in page
    assert f"/admin/flows/flow/{template.pk}/change/" in page


def test_a_refused_instance_is_shown_on_the_form(admin_client, template, crm):
    services.create_instance(template=template, name="Acme")

    response = admin_client.post(
        create_page(template),
        {"name": "Acme", "variable_rows-rows": "1", f"connection_{crm.pk}": str(crm.pk)},
    )

    assert response.status_code == 200
    assert "already exists" in str(response.context["form"].errors)
    assert Flow.objects.filter(name="Acme").count() == 1


def test_the_template_page_lists_its_instances_with_their_ids_and_the_header(
    admin_client, template
):
    acme = services.create_instance(template=template, name="Acme")
    globex = services.create_instance(template=template, name="Globex")

    page = admin_client.get(f"/admin/flows/flow/{template.pk}/change/").content.decode()

    listed = re.findall(r'<code class="instance-id">(\d+)</code>', page)
    assert listed == [str(acme.pk), str(globex.pk)]
    assert f"<code>{HEADER}: {acme.pk}</code>" in page
    # The endpoint panel's curl names an instance with the header.
    curl = re.search(r'<pre class="endpoint-curl"[^>]*>(.*?)</pre>', page, re.S).group(1)
    assert "/api/resources/greeting" in curl
    assert f"-H &#x27;{HEADER}: {acme.pk}&#x27;" in curl


def test_an_instance_page_curl_carries_its_own_id(admin_client, template):
    acme = services.create_instance(template=template, name="Acme")

    page = admin_client.get(f"/admin/flows/flow/{acme.pk}/change/").content.decode()

    curl = re.search(r'<pre class="endpoint-curl"[^>]*>(.*?)</pre>', page, re.S).group(1)
    assert f"{HEADER}: {acme.pk}" in curl
    assert f'data-headers="{{&quot;{HEADER}&quot;: &quot;{acme.pk}&quot;}}"' in page


def test_update_from_template_keeps_the_instance_values(admin_client, template, crm, crm_eu):
    acme = services.create_instance(
        template=template,
        name="Acme",
        variables={"region": "eu"},
        connection_map={str(crm.pk): str(crm_eu.pk)},
    )
    template.description = "v2"
    template.variables = {**template.variables, "currency": "USD"}
    template.save()

    response = admin_client.post(f"/admin/flows/flow/{acme.pk}/update-from-template/")

    assert response.status_code == 302
    acme.refresh_from_db()
    assert acme.description == "v2"
    assert acme.name == "Acme"
    assert acme.variables == {"greeting": "Hello", "region": "eu", "currency": "USD"}
    assert acme.connection_map == {str(crm.pk): str(crm_eu.pk)}
    assert admin_client.get(f"/admin/flows/flow/{acme.pk}/update-from-template/").status_code == 405


def test_the_update_from_template_action_reports_counts(admin_client, template):
    acme = services.create_instance(template=template, name="Acme")
    template.description = "v2"
    template.save()

    response = admin_client.post(
        "/admin/flows/flow/",
        {"action": "update_from_template", "_selected_action": [acme.pk, template.pk]},
        follow=True,
    )

    page = response.content.decode()
    assert "Updated 1 instance(s) from their template" in page
    assert "is not an instance of a template" in page
    acme.refresh_from_db()
    assert acme.description == "v2"


def test_the_create_instance_action_opens_the_form_for_one_template(admin_client, template):
    response = admin_client.post(
        "/admin/flows/flow/", {"action": "create_instance", "_selected_action": [template.pk]}
    )
    assert response.status_code == 302
    assert response["Location"] == create_page(template)

    plain = Flow.objects.create(application=template.application, name="Plain")
    refused = admin_client.post(
        "/admin/flows/flow/",
        {"action": "create_instance", "_selected_action": [plain.pk]},
        follow=True,
    )
    assert "Select one template to create an instance of." in refused.content.decode()
    page = admin_client.get(create_page(plain), follow=True).content.decode()
    assert "is not a template" in page
