"""Fixtures shared by the flows app's tests."""

import pytest

from apps.flows.models import Connection, Export, Flow, Script

PREPARE = "function main(ctx) { return {statusCode: 200, result: 'Hello'}; }"


@pytest.fixture
def crm(db) -> Connection:
    return Connection.objects.create(name="CRM", base_uri="https://crm.example.com")


@pytest.fixture
def crm_eu(db) -> Connection:
    return Connection.objects.create(name="CRM (EU)", base_uri="https://eu.crm.example.com")


@pytest.fixture
def template(application, crm) -> Flow:
    """Seed 000's "Simple FaaR" flow, made a template, that also reads from a connection."""
    script = Script.objects.create(name="prepareResponse", content=PREPARE)
    export = Export.objects.create(name="Accounts", connection=crm, relative_uri="/accounts")
    return Flow.objects.create(
        application=application,
        name="Simple FaaR",
        is_template=True,
        page_generators=[{"_exportId": str(export.pk)}],
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
        variables={"greeting": "Hello", "region": "us"},
        api={"enabled": True, "method": "GET", "path": "/greeting", "mode": "sync"},
    )
