"""The flow page edits steps, variables and the API as rows and fields: nothing typed as
JSON or as an id; the JSON documents stay available under "Advanced", checked the same."""

import html
import json
import re

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import Role
from apps.flows.forms import FlowForm
from apps.flows.models import Application, Connection, Export, Flow, Import, Script

pytestmark = pytest.mark.django_db


@pytest.fixture
def pieces(application):
    other = Application.objects.create(name="Other")
    api = Connection.objects.create(name="CRM", base_uri="https://crm.example.com")

    def export(app, name):
        return Export.objects.create(application=app, name=name, connection=api)

    return {
        "export": export(application, "Hot leads"),
        "lookup": export(None, "Company lookup"),
        "foreign": export(other, "Other's export"),
        "import": Import.objects.create(
            application=application, name="Write to CRM", connection=api
        ),
        "script": Script.objects.create(
            application=application, name="Shout", content="function main(c){return c.records}"
        ),
        "subflow": Flow.objects.create(application=application, name="Enrich"),
    }


def flow_fields(application) -> dict:
    """The flow's own fields and JSON documents, as every save through FlowForm posts them."""
    return {
        "application": application.pk,
        "name": "Leads",
        "timezone": "UTC",
        "timeout_ms": 60000,
        "max_concurrency": 0,
        "concurrency_policy": "queue",
        "page_generators": "[]",
        "page_processors": "[]",
        "variables": "{}",
        "api": "{}",
    }


def rows_form(application, shown: dict | None = None, **rows) -> dict:
    """A post as the flow page makes it: the rows' columns, the endpoint fields, and the
    JSON documents as the page `shown` them, with their hidden copies (Django's
    show_hidden_initial), which tell an edited document from an untouched one."""
    form = {
        **flow_fields(application),
        "generator_rows-rows": "1",
        "processor_rows-rows": "1",
        "variable_rows-rows": "1",
        "secret_variable_rows-rows": "1",
        "endpoint_method": "GET",
        "endpoint_mode": "sync",
        "endpoint_output_name": "records",
        "endpoint_error_status": "200",
    }
    form.update(shown or {})
    for name in ("page_generators", "page_processors", "variables", "api"):
        form[f"initial-{name}"] = form[name]
    for name, columns in rows.items():
        for column, values in columns.items():
            form[f"{name}-{column}"] = values
    return form


def generators(*steps):
    return {
        "step": list(steps),
        "on_failure": ["stop"] * len(steps),
        "function": [""] * len(steps),
        "mapping": [""] * len(steps),
        "extra": [""] * len(steps),
    }


def processors(*rows):
    """Rows as (step, on_failure, function, mapping)."""
    return {
        "step": [row[0] for row in rows],
        "on_failure": [row[1] for row in rows],
        "function": [row[2] for row in rows],
        "mapping": [row[3] for row in rows],
        "extra": [""] * len(rows),
    }


def test_a_flow_is_built_from_rows_picked_by_name(admin_client, application, pieces):
    form = rows_form(
        application,
        generator_rows=generators(f"export:{pieces['export'].pk}"),
        processor_rows=processors(
            (f"export:{pieces['lookup'].pk}", "proceed", "", "id → companyId\nname -> company"),
            (f"script:{pieces['script'].pk}", "stop", "shout", ""),
            (f"flow:{pieces['subflow'].pk}", "stop", "", ""),
            (f"import:{pieces['import'].pk}", "stop", "", ""),
        ),
        variable_rows={"name": ["region", "limit"], "value": ["EU", "10"]},
    )
    response = admin_client.post("/admin/flows/flow/add/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors

    flow = Flow.objects.get(name="Leads")
    assert flow.page_generators == [{"_exportId": str(pieces["export"].pk)}]
    assert flow.page_processors == [
        {
            "type": "export",
            "_exportId": str(pieces["lookup"].pk),
            "proceedOnFailure": True,
            "responseMapping": {
                "fields": [
                    {"extract": "id", "generate": "companyId"},
                    {"extract": "name", "generate": "company"},
                ]
            },
        },
        {"type": "script", "_scriptId": str(pieces["script"].pk), "function": "shout"},
        {"type": "flow", "_flowId": str(pieces["subflow"].pk)},
        {"type": "import", "_importId": str(pieces["import"].pk)},
    ]
    assert flow.variables == {"region": "EU", "limit": "10"}


def test_the_rows_are_saved_in_the_order_the_page_posts_them(admin_client, application, pieces):
    flow = Flow.objects.create(
        application=application,
        name="Leads",
        page_processors=[
            {"type": "script", "_scriptId": str(pieces["script"].pk)},
            {"type": "import", "_importId": str(pieces["import"].pk)},
        ],
    )
    shown = {"page_processors": json.dumps(flow.page_processors)}
    form = rows_form(
        application,
        shown,
        processor_rows=processors(
            (f"import:{pieces['import'].pk}", "stop", "", ""),
            (f"script:{pieces['script'].pk}", "stop", "", ""),
        ),
    )
    response = admin_client.post(f"/admin/flows/flow/{flow.pk}/change/", form)
    assert response.status_code == 302
    flow.refresh_from_db()
    assert [step["type"] for step in flow.page_processors] == ["import", "script"]

    shown = {"page_processors": json.dumps(flow.page_processors)}
    form = rows_form(application, shown, processor_rows=processors())  # every row removed
    assert admin_client.post(f"/admin/flows/flow/{flow.pk}/change/", form).status_code == 302
    flow.refresh_from_db()
    assert flow.page_processors == []


def test_the_page_shows_the_steps_as_rows_with_names_and_keeps_what_rows_cannot_show(
    admin_client, application, pieces
):
    lists = [{"generate": "contacts", "fields": [{"extract": "email", "generate": "email"}]}]
    flow = Flow.objects.create(
        application=application,
        name="Leads",
        page_generators=[{"_exportId": pieces["export"].pk}],
        page_processors=[
            {
                "type": "export",
                "_exportId": str(pieces["lookup"].pk),
                "name": "Find the company",
                "responseMapping": {
                    "fields": [{"extract": "id", "generate": "companyId"}],
                    "lists": lists,
                },
            }
        ],
        variables={"limit": 10},
    )
    page = admin_client.get(f"/admin/flows/flow/{flow.pk}/change/").content.decode()
    assert f'<option value="export:{pieces["export"].pk}" selected>Hot leads</option>' in page
    assert "Company lookup · export" in page
    assert "Other&#x27;s export" not in page  # another application's export is not offered
    assert "Shout · script" in page
    assert "Enrich · flow" in page
    assert "id → companyId</textarea>" in page
    assert 'value="10"' in page  # the variable, shown as text

    # Saved untouched from the page: the documents stay exactly as they were.
    shown = {
        name: json.dumps(getattr(flow, name))
        for name in ("page_generators", "page_processors", "variables")
    }
    form = rows_form(
        application,
        shown,
        generator_rows=generators(f"export:{pieces['export'].pk}"),
        processor_rows=processors((f"export:{pieces['lookup'].pk}", "stop", "", "id → companyId")),
        variable_rows={"name": ["limit"], "value": ["10"]},
    )
    extra = re.search(r'name="processor_rows-extra" value="([^"]*)"', page).group(1)
    form["processor_rows-extra"] = html.unescape(extra)
    before = (flow.page_generators, flow.page_processors, flow.variables)
    response = admin_client.post(f"/admin/flows/flow/{flow.pk}/change/", form)
    assert response.status_code == 302
    flow.refresh_from_db()
    assert (flow.page_generators, flow.page_processors, flow.variables) == before

    # A mapping edited in its row keeps the step's name and list mappings.
    form["processor_rows-mapping"] = "id → companyId\nsize → employees"
    assert admin_client.post(f"/admin/flows/flow/{flow.pk}/change/", form).status_code == 302
    flow.refresh_from_db()
    (step,) = flow.page_processors
    assert step["name"] == "Find the company"
    assert step["responseMapping"]["lists"] == lists
    assert step["responseMapping"]["fields"][1] == {"extract": "size", "generate": "employees"}
    assert flow.variables == {"limit": 10}  # its number kept while its text was not edited


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (processors(("", "stop", "", "")), "Step 1: pick what it does, or remove the row."),
        (
            processors(("script:{script}", "stop", "", "just one side")),
            "Step 1: &#x27;just one side&#x27; must read &#x27;extract → generate&#x27;",
        ),
        (processors(("bogus:1", "stop", "", "")), "is not a step to pick here"),
        (processors(("script:999999", "stop", "", "")), "pageProcessors[0]: script 999999 does"),
        (processors(("export:{foreign}", "stop", "", "")), "belongs to another application"),
    ],
)
def test_a_bad_row_is_refused_next_to_the_rows_naming_the_step(
    admin_client, application, pieces, rows, message
):
    rows["step"] = [
        step.format(script=pieces["script"].pk, foreign=pieces["foreign"].pk)
        for step in rows["step"]
    ]
    response = admin_client.post(
        "/admin/flows/flow/add/", rows_form(application, processor_rows=rows)
    )
    assert response.status_code == 200
    assert "processor_rows" in response.context["adminform"].form.errors
    assert message in response.content.decode()
    assert not Flow.objects.filter(name="Leads").exists()


def test_a_generator_row_takes_only_an_export(admin_client, application, pieces):
    form = rows_form(application, generator_rows=generators(f"script:{pieces['script'].pk}"))
    response = admin_client.post("/admin/flows/flow/add/", form)
    assert "generator_rows" in response.context["adminform"].form.errors


def test_editing_rows_and_their_json_in_one_save_is_refused(admin_client, application, pieces):
    form = rows_form(
        application, processor_rows=processors((f"script:{pieces['script'].pk}", "stop", "", ""))
    )
    form["page_processors"] = f'[{{"type": "import", "_importId": "{pieces["import"].pk}"}}]'
    response = admin_client.post("/admin/flows/flow/add/", form)
    assert "either as rows or as JSON" in response.content.decode()


def test_the_advanced_json_still_works_when_the_rows_are_left_alone(
    admin_client, application, pieces
):
    form = rows_form(application)
    form["page_processors"] = f'[{{"type": "script", "_scriptId": "{pieces["script"].pk}"}}]'
    form["api"] = '{"enabled": true, "method": "POST", "path": "/from-json"}'
    assert admin_client.post("/admin/flows/flow/add/", form).status_code == 302
    flow = Flow.objects.get(name="Leads")
    assert flow.page_processors[0]["type"] == "script"
    assert (flow.api_enabled, flow.api_method, flow.api_path) == (True, "POST", "/from-json")


def test_the_api_is_set_with_fields_and_keeps_its_input_schema(admin_client, application):
    Role.objects.create(name="sales")
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    flow = Flow.objects.create(
        application=application, name="Leads", api={"inputSchema": schema, "timeout": 900}
    )
    form = rows_form(application, {"api": json.dumps(flow.api)})
    form.update(
        endpoint_enabled="on",
        endpoint_method="POST",
        endpoint_path="leads/search",
        endpoint_mode="async",
        endpoint_timeout="",
        endpoint_roles=["sales"],
        endpoint_error_status="phixflow",
    )
    response = admin_client.post(f"/admin/flows/flow/{flow.pk}/change/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    flow.refresh_from_db()
    assert flow.api == {
        "inputSchema": schema,
        "enabled": True,
        "method": "POST",
        "path": "leads/search",
        "mode": "async",
        "allowAnonymous": False,
        "roles": ["sales"],
        "outputName": "records",
        "errorStatus": "phixflow",
    }
    assert (flow.api_enabled, flow.api_method, flow.api_path) == (True, "POST", "/leads/search")

    page = admin_client.get(f"/admin/flows/flow/{flow.pk}/change/").content.decode()
    assert 'name="endpoint_enabled" id="id_endpoint_enabled" checked' in page
    assert 'value="async" selected' in page


def test_an_api_path_taken_by_another_flow_is_refused_on_the_path_field(admin_client, application):
    Flow.objects.create(
        application=application,
        name="First",
        api={"enabled": True, "method": "GET", "path": "/greeting"},
    )
    form = rows_form(application)
    form.update(endpoint_enabled="on", endpoint_path="/greeting")
    response = admin_client.post("/admin/flows/flow/add/", form)
    errors = response.context["adminform"].form.errors
    assert "is already the API of flow" in str(errors["endpoint_path"])


def test_a_variable_without_a_name_or_given_twice_is_refused(admin_client, application):
    form = rows_form(application, variable_rows={"name": ["", "a", "a"], "value": ["x", "1", "2"]})
    response = admin_client.post("/admin/flows/flow/add/", form)
    errors = str(response.context["adminform"].form.errors["variable_rows"])
    assert "needs a name" in errors
    assert "a is given twice" in errors


def test_damaged_rows_answer_a_form_error_not_a_crash(admin_client, application, pieces):
    form = rows_form(
        application, processor_rows=processors((f"script:{pieces['script'].pk}", "stop", "", ""))
    )
    form["processor_rows-extra"] = "{not json"
    response = admin_client.post("/admin/flows/flow/add/", form)
    assert response.status_code == 200
    assert "were damaged" in response.content.decode()

    form["processor_rows-extra"] = '{"responseMapping": 5, "name": "kept"}'
    assert admin_client.post("/admin/flows/flow/add/", form).status_code == 302
    assert Flow.objects.get(name="Leads").page_processors[0]["name"] == "kept"


@pytest.mark.parametrize(
    "cut",
    ["processor_rows-function", "variable_rows-value", "secret_variable_rows-value"],
)
def test_rows_not_received_whole_are_refused_and_nothing_is_lost(
    admin_client, application, pieces, cut
):
    """A post missing one value of one column (cut short, or changed on its way) saved the
    flow without its steps, variables or secret variables, as a success (an outside probe)."""
    flow = Flow.objects.create(
        application=application,
        name="Leads",
        page_processors=[{"type": "script", "_scriptId": str(pieces["script"].pk)}],
        variables={"region": "EU"},
    )
    flow.set_secret_variables({"token": "s3cret-token"})
    flow.save()
    form = rows_form(
        application,
        processor_rows=processors((f"script:{pieces['script'].pk}", "stop", "", "")),
        variable_rows={"name": ["region"], "value": ["EU"]},
        secret_variable_rows={"name": ["token"], "value": [""]},
    )
    form[cut] = []  # the column arrives without its one value

    response = admin_client.post(f"/admin/flows/flow/{flow.pk}/change/", form)

    assert response.status_code == 200
    assert "not received whole" in response.content.decode()
    flow.refresh_from_db()
    assert len(flow.page_processors) == 1
    assert flow.variables == {"region": "EU"}
    assert flow.secret_variables() == {"token": "s3cret-token"}


def test_the_flow_page_reads_its_pickers_in_a_fixed_number_of_queries(
    admin_client, application, pieces
):
    flow = Flow.objects.create(application=application, name="Leads")
    api = pieces["export"].connection

    def queries() -> int:
        with CaptureQueriesContext(db) as captured:
            assert admin_client.get(f"/admin/flows/flow/{flow.pk}/change/").status_code == 200
        return len(captured)

    few = queries()
    for number in range(30):
        Script.objects.create(application=application, name=f"s{number}", content="")
        Export.objects.create(application=application, name=f"e{number}", connection=api)
    assert queries() == few


def test_secret_variables_are_rows_whose_values_are_never_shown(admin_client, application):
    flow = Flow.objects.create(application=application, name="Leads")
    flow.set_secret_variables({"apiToken": "s3cret-token", "old": "gone-soon"})
    flow.save()
    page = admin_client.get(f"/admin/flows/flow/{flow.pk}/change/").content.decode()
    assert 'value="apiToken" readonly' in page
    assert "s3cret-token" not in page

    # apiToken kept (left empty), old forgotten (its row removed), pin added.
    form = rows_form(
        application, secret_variable_rows={"name": ["apiToken", "pin"], "value": ["", "1234"]}
    )
    response = admin_client.post(f"/admin/flows/flow/{flow.pk}/change/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    flow.refresh_from_db()
    assert flow.secret_variables() == {"apiToken": "s3cret-token", "pin": "1234"}

    form = rows_form(
        application, secret_variable_rows={"name": ["apiToken", "new"], "value": ["x", ""]}
    )
    response = admin_client.post(f"/admin/flows/flow/{flow.pk}/change/", form)
    assert "new needs a value" in response.content.decode()
    assert 'value="x"' not in response.content.decode()  # not even a value just typed
    flow.refresh_from_db()
    assert flow.secret_variables()["apiToken"] == "s3cret-token"


def test_a_save_without_the_page_reads_neither_the_pickers_nor_the_roles(application, pieces):
    """The management API saves through the same form: what only the page shows is not read."""
    flow = Flow.objects.create(application=application, name="Leads")
    with CaptureQueriesContext(db) as captured:
        form = FlowForm(flow_fields(application), instance=flow)
        assert form.is_valid(), form.errors
    read = " ".join(query["sql"] for query in captured)
    assert "flows_script" not in read
    assert "accounts_role" not in read


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"v": ' + "[" * 900 + "]" * 900 + "}", "Nested more than 100 levels"),
        ('{"v": ' + "[" * 3000 + "]" * 3000 + "}", "Nested more than 100 levels"),
        ('{"limit": NaN}', "NaN is not valid JSON"),
        ("[Infinity]", "Infinity is not valid JSON"),
        ('{"limit": 1e400}', "beyond what a 64-bit float holds"),
    ],
)
def test_the_admins_json_is_read_as_the_api_reads_it(admin_client, application, text, message):
    """A document some hundreds of levels deep, or NaN, was a 500 in the admin where the
    API answers 400 (found by an outside probe and the review)."""
    form = rows_form(application)
    form.pop("variable_rows-rows")  # the Advanced JSON decides
    form["variables"] = text

    response = admin_client.post("/admin/flows/flow/add/", form)

    assert response.status_code == 200
    assert message in str(response.context["adminform"].form.errors["variables"])
    assert not Flow.objects.exists()
