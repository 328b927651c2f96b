"""The hot path of a sync flow call stays cheap: few queries, one write transaction.

Issue "Hot path", writes per run: a sync run of a flow without maxConcurrency, called
without an Idempotency-Key, is written once, with its steps, when it ends. Other runs
write their row when they start. Inside a test's transaction each write transaction is a
SAVEPOINT."""

import threading
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from apps.accounts import key_cache
from apps.accounts.services import create_api_key
from apps.executions import route_cache, services
from apps.executions.models import Execution
from apps.flows import spec_cache
from apps.flows.models import Flow, Script
from tests.executions.conftest import GREETING

WRITES = {"INSERT", "UPDATE", "DELETE"}


def greeting_flow(application, **api) -> Flow:
    script = Script.objects.create(name="prepareResponse", content=GREETING)
    return Flow.objects.create(
        application=application,
        name="greeting",
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
        api={"enabled": True, "method": "GET", "path": "/greeting", **api},
    )


def key_client(integration) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {create_api_key(owner=integration).plaintext}")
    return client


def captured(client, path, **headers):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, **headers)
    sql = [q["sql"] for q in queries.captured_queries]
    statements = [s for s in sql if not s.startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    writes = [s for s in statements if s.split()[0] in WRITES]
    transactions = sum(s.startswith("SAVEPOINT") for s in sql)
    return response, statements, writes, transactions


@pytest.fixture
def remembered_keys(monkeypatch):
    # A key authenticated by the warm-up call is remembered for the measured one, however
    # long the warm-up's sandbox took to start.
    monkeypatch.setattr(key_cache.memory, "seconds", 60.0)
    key_cache.clear()
    yield
    key_cache.clear()


@pytest.fixture
def warm_caches(monkeypatch, remembered_keys):
    # The route and the flow's spec too (tests/conftest.py turns them off), as in
    # production but for longer than the warm-up call can take.
    for module in (route_cache, spec_cache):
        monkeypatch.setattr(module.memory, "seconds", 60.0)
        module.clear()
    yield
    for module in (route_cache, spec_cache):
        module.clear()


def test_a_sync_greeting_call_costs_few_queries(db, application, integration, warm_caches):
    greeting_flow(application)
    client = key_client(integration)
    assert client.get("/api/resources/greeting?name=warm").status_code == 200  # last_used write
    response, statements, writes, transactions = captured(
        client, "/api/resources/greeting?name=Leor"
    )
    assert response.status_code == 200
    assert response.json() == "Hello Leor"
    # The key, the route's flow and the flow's spec are remembered: no read at all; the
    # finished run and its step are written together.
    assert len(statements) == 2, "\n".join(statements)
    assert [sql.split()[2] for sql in writes] == [
        '"executions_execution"',
        '"executions_steprun"',
    ], writes
    assert transactions == 1
    assert list(Execution.objects.values_list("status", flat=True)) == ["succeeded"] * 2


def test_a_trigger_url_call_with_warm_caches_reads_nothing(
    db, application, integration, warm_caches
):
    greeting_flow(application)
    client = key_client(integration)
    url = f"/api/1/action/{application.name.replace(' ', '%20')}/greeting/trigger?name="
    assert client.get(url + "warm").status_code == 200
    response, statements, writes, transactions = captured(client, url + "Leor")
    assert response.json() == "Hello Leor"
    assert len(statements) == len(writes) == 2, "\n".join(statements)
    assert transactions == 1


def test_a_route_and_spec_not_remembered_cost_two_queries_more(
    db, application, integration, remembered_keys
):
    greeting_flow(application)
    client = key_client(integration)
    assert client.get("/api/resources/greeting?name=warm").status_code == 200
    _, statements, _, transactions = captured(client, "/api/resources/greeting?name=Leor")
    assert len(statements) == 4, "\n".join(statements)  # + the flow, + its script
    assert transactions == 1


def test_a_key_not_remembered_costs_two_queries_more(db, application, integration, monkeypatch):
    monkeypatch.setattr(key_cache.memory, "seconds", 0.0)
    greeting_flow(application)
    client = key_client(integration)
    assert client.get("/api/resources/greeting?name=warm").status_code == 200
    _, statements, _, transactions = captured(client, "/api/resources/greeting?name=Leor")
    # + the flow, + its script; + the key, + its owner's privileges
    assert len(statements) == 6, "\n".join(statements)
    assert transactions == 1


def test_the_finished_run_keeps_when_it_started(db, application, integration):
    greeting_flow(application)
    assert key_client(integration).get("/api/resources/greeting?name=Leor").status_code == 200
    run = Execution.objects.get()
    assert run.created_at == run.started_at <= run.finished_at


def test_a_call_with_an_idempotency_key_writes_its_run_when_it_starts(
    db, application, integration, remembered_keys
):
    greeting_flow(application)
    client = key_client(integration)
    client.get("/api/resources/greeting?name=warm")
    response, _, writes, transactions = captured(
        client, "/api/resources/greeting?name=Leor", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert response.status_code == 200
    assert [sql.split()[0] for sql in writes] == ["INSERT", "UPDATE", "INSERT"], writes
    assert transactions == 2


def test_a_flow_with_max_concurrency_writes_its_run_when_it_starts(
    db, application, integration, remembered_keys
):
    flow = greeting_flow(application)
    flow.max_concurrency = 2
    flow.save()
    client = key_client(integration)
    client.get("/api/resources/greeting?name=warm")
    response, _, writes, transactions = captured(client, "/api/resources/greeting?name=Leor")
    assert response.status_code == 200
    assert writes[0].startswith('INSERT INTO "executions_execution"'), writes
    assert transactions >= 2


SLOW = (
    "function main(ctx) { var t = Date.now(); while (Date.now() - t < 800) {} "
    "return {statusCode: 200, result: 'slow'}; }"
)


def test_a_run_still_running_after_the_deferral_has_its_running_row(
    transactional_db, application, integration, monkeypatch
):
    monkeypatch.setattr(services, "DEFERRED_SECONDS", 0.1)
    script = Script.objects.create(name="slow", content=SLOW)
    Flow.objects.create(
        application=application,
        name="slow",
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
        api={"enabled": True, "method": "GET", "path": "/slow"},
    )
    client = key_client(integration)
    answers = []
    call = threading.Thread(target=lambda: answers.append(client.get("/api/resources/slow")))
    call.start()
    seen = None
    deadline = time.monotonic() + 5
    while call.is_alive() and seen is None and time.monotonic() < deadline:
        seen = Execution.objects.filter(status="running").values_list("pk", flat=True).first()
        time.sleep(0.02)
    call.join()
    assert seen is not None, "the running row was not written while the run went on"
    assert answers[0].status_code == 200
    run = Execution.objects.get(pk=seen)
    assert run.status == "succeeded"
    assert run.steps.count() == 1
