"""A flow of paged export → lookup → script → data-table import against a local server."""

import json

import pytest
from django.conf import settings

from apps.executions import launch
from apps.executions import services as executions
from apps.flows.models import Connection, Export, Flow, Import, Script
from apps.records.models import RecordField, RecordType

SCORE = """function main(ctx) {
  return ctx.records.map(function (customer) {
    return {
      Email: customer.email,
      Company: customer.name,
      Rating: customer.limit > 1000 ? 'Hot' : 'Cold'
    };
  });
}
"""
CUSTOMERS = [
    {"id": 1, "name": "Acme", "email": "ada@acme.example"},
    {"id": 2, "name": "Globex", "email": "hank@globex.example"},
    {"id": 3, "name": "Initech", "email": "peter@initech.example"},
]
LIMITS = {1: 5000, 2: 200, 3: 1500}
TOKEN = "s3cret-crm-token-0042"


@pytest.fixture
def crm(db, httpserver) -> Connection:
    """The local server's customers (two pages of two) and their credit limits."""
    for page, rows in ((1, CUSTOMERS[:2]), (2, CUSTOMERS[2:])):
        httpserver.expect_request(
            "/customers", query_string=f"pageSize=2&page={page}"
        ).respond_with_json({"data": rows})
    for customer in CUSTOMERS:
        httpserver.expect_request(f"/credit/{customer['id']}").respond_with_json(
            {"limit": LIMITS[customer["id"]]}
        )
    connection = Connection(
        name="CRM",
        base_uri=httpserver.url_for("/").rstrip("/"),
        allowed_private_hosts=["localhost", "127.0.0.1"],
        auth_type="bearer",
    )
    connection.set_secrets(token=TOKEN)
    connection.save()
    return connection


@pytest.fixture
def lead_table(application) -> RecordType:
    record_type = RecordType.objects.create(application=application, name="Scored lead")
    for position, (name, kind) in enumerate(
        (("Email", "email"), ("Company", "text"), ("Rating", "text"))
    ):
        RecordField.objects.create(record_type=record_type, position=position, name=name, type=kind)
    return record_type


@pytest.fixture
def pipeline(application, crm, lead_table) -> Flow:
    customers = Export.objects.create(
        name="Customers",
        connection=crm,
        relative_uri="/customers",
        resource_path="data",
        paging="page",
        page_size=2,
    )
    credit = Export.objects.create(
        name="Credit limit", connection=crm, relative_uri="/credit/{{record.id}}"
    )
    score = Script.objects.create(name="score", content=SCORE)
    tables = Connection.objects.create(name="Data tables", type=Connection.Type.RECORDS)
    upsert = Import.objects.create(
        name="Upsert lead",
        connection=tables,
        records={"_recordTypeId": str(lead_table.pk), "action": "upsert", "keyField": "Email"},
    )
    return Flow.objects.create(
        application=application,
        name="score customers",
        capture_for_tests=True,
        page_generators=[{"_exportId": str(customers.pk)}],
        page_processors=[
            {
                "type": "export",
                "_exportId": str(credit.pk),
                "responseMapping": {"fields": [{"extract": "data[0].limit", "generate": "limit"}]},
            },
            {"type": "script", "_scriptId": str(score.pk)},
            {"type": "import", "_importId": str(upsert.pk)},
        ],
    )


def run(flow: Flow, caller):
    execution = executions.create_execution(flow=flow, trigger="run", caller=caller)
    return launch.run_queued(execution.pk)


@pytest.fixture
def greeting(application) -> Flow:
    """The demo's greeting flow, as fixtures/demo.json defines it (its script and flow)."""
    demo = json.loads((settings.BASE_DIR / "fixtures" / "demo.json").read_text())
    [script] = [o["fields"] for o in demo if o["model"] == "flows.script"]
    [flow] = [
        o["fields"]
        for o in demo
        if o["model"] == "flows.flow" and o["fields"]["name"] == "greeting"
    ]
    prepare = Script.objects.create(name=script["name"], content=script["content"])
    return Flow.objects.create(
        application=application,
        name=flow["name"],
        page_processors=[{**flow["page_processors"][0], "_scriptId": str(prepare.pk)}],
        api=flow["api"],
    )
