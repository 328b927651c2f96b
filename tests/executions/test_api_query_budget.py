"""The hot path of a sync flow call stays cheap: few queries, two write transactions."""

from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.accounts.services import create_api_key
from apps.flows.models import Flow, Script
from tests.executions.conftest import GREETING


def test_a_sync_greeting_call_costs_few_queries(db, application, integration):
    script = Script.objects.create(name="prepareResponse", content=GREETING)
    Flow.objects.create(
        application=application,
        name="greeting",
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
        api={"enabled": True, "method": "GET", "path": "/greeting"},
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {create_api_key(owner=integration).plaintext}")
    assert client.get("/api/resources/greeting?name=warm").status_code == 200  # last_used write
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/resources/greeting?name=Leor")
    assert response.status_code == 200
    statements = [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
    ]
    writes = [sql for sql in statements if sql.split()[0] in {"INSERT", "UPDATE", "DELETE"}]
    # Key, privileges, flow, key restriction; the run's row, its script, its step, its outcome.
    assert len(statements) <= 8, "\n".join(statements)
    assert len(writes) == 3


def test_an_async_call_writes_once(
    db, application, integration, django_capture_on_commit_callbacks, monkeypatch
):
    from apps.executions import queue
    from apps.executions.models import Execution

    monkeypatch.setattr(queue, "send_run", lambda execution_id: None)
    script = Script.objects.create(name="prepareResponse", content=GREETING)
    Flow.objects.create(
        application=application,
        name="greeting",
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
        api={"enabled": True, "method": "GET", "path": "/greeting", "mode": "async"},
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {create_api_key(owner=integration).plaintext}")
    client.get("/api/resources/greeting?name=warm")
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/resources/greeting?name=Leor")
    assert response.status_code == 202
    writes = [
        q["sql"] for q in queries.captured_queries if q["sql"].split()[0] in {"INSERT", "UPDATE"}
    ]
    assert len(writes) == 1, writes
    execution = Execution.objects.get(pk=response.json()["processId"])
    assert execution.celery_task_id == str(execution.pk)
