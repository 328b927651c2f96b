"""Async and auto calls, run by a real Celery worker (Redis in CI's second pass)."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import OperationalError

from apps.executions import selectors
from apps.executions.models import Execution
from tests.conftest import live_database_url, wait_for
from tests.executions.conftest import as_json, call

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(start_worker):
    # Same broker as this process (var/broker, or CELERY_BROKER_URL in CI), same database.
    return start_worker(DATABASE_URL=live_database_url())


@pytest.fixture
def broker_down(monkeypatch):
    from flowsite.celery import app

    def reset_pools():
        app._pool = None
        app.amqp._producer_pool = None

    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)  # it overrides conf in Celery
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    reset_pools()
    yield
    monkeypatch.undo()
    reset_pools()


def poll_until_done(live_server, url, key, timeout=30):
    def done():
        body = as_json(call(live_server, "GET", url, key=key))
        return body if body["status"] not in ("queued", "running") else None

    return wait_for(done, timeout=timeout, interval=0.1, message=f"{url} to finish")


def test_seed_001_async_answers_202_and_is_polled_to_completion(
    live_server, leads, caller_key, worker
):
    leads.api = {**leads.api, "mode": "async"}
    leads.save()
    response = call(
        live_server, "POST", "/api/1/action/Sales%20Ops/Hot%20leads/trigger", key=caller_key
    )
    assert response.status == 202, response.data
    body = as_json(response)
    assert response.headers["Location"] == body["pollUrl"]
    assert body["pollUrl"].endswith(f"/poll/{body['processId']}")
    final = poll_until_done(live_server, body["pollUrl"], caller_key)
    assert final["status"] == "succeeded", worker.log()
    assert [lead["company"] for lead in final["data"]["Leads"]] == ["Acme", "Globex"]


def test_prefer_respond_async_turns_a_sync_flow_async(live_server, greeting, caller_key, worker):
    response = call(
        live_server,
        "GET",
        "/api/resources/greeting?name=Ann",
        key=caller_key,
        headers={"Prefer": "respond-async"},
    )
    assert response.status == 202
    final = poll_until_done(live_server, as_json(response)["pollUrl"], caller_key)
    assert (final["status"], final["body"]) == ("succeeded", "Hello Ann")


def test_auto_answers_202_when_the_run_outlasts_its_timeout(
    live_server, slow_flow, caller_key, worker
):
    slow_flow("auto", 1, '[{"done": true}]', api={"enabled": True, "mode": "auto", "timeout": 200})
    started = time.monotonic()
    response = call(live_server, "GET", "/api/1/action/Sales%20Ops/auto/trigger", key=caller_key)
    assert response.status == 202
    assert time.monotonic() - started < 1.0
    assert response.headers["Retry-After"] == "1"
    final = poll_until_done(live_server, response.headers["Location"], caller_key)
    assert final["data"]["records"] == [{"done": True}]


def test_auto_answers_202_with_the_run_to_poll_when_the_database_stops_answering_meanwhile(
    live_server, slow_flow, caller_key, worker, monkeypatch
):
    """It was a 503 without the id of a run that went on: the caller could not find it."""
    slow_flow("auto", 1, '[{"done": true}]', api={"enabled": True, "mode": "auto", "timeout": 5000})
    status_of, outage = selectors.status_of, []

    def unavailable_once(execution_id):
        if not outage:
            outage.append(execution_id)
            raise OperationalError("server closed the connection unexpectedly")
        return status_of(execution_id)

    monkeypatch.setattr(selectors, "status_of", unavailable_once)

    response = call(live_server, "GET", "/api/1/action/Sales%20Ops/auto/trigger", key=caller_key)

    assert response.status == 202, response.data
    body = as_json(response)
    assert body["processId"] == str(outage[0])
    assert response.headers["Location"] == body["pollUrl"]
    final = poll_until_done(live_server, body["pollUrl"], caller_key)
    assert (final["status"], final["data"]["records"]) == ("succeeded", [{"done": True}])


def test_fifty_concurrent_calls_with_one_idempotency_key_start_one_run(
    live_server, greeting, caller_key, worker
):
    greeting.api = {**greeting.api, "mode": "async"}
    greeting.save()
    headers = {"Idempotency-Key": "invoice-2026-001"}

    def one(_):
        return call(
            live_server, "GET", "/api/resources/greeting?name=Zed", key=caller_key, headers=headers
        )

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(one, range(50)))
    assert {r.status for r in responses} == {202}
    assert len({as_json(r)["processId"] for r in responses}) == 1
    assert Execution.objects.count() == 1
    final = poll_until_done(live_server, as_json(responses[0])["pollUrl"], caller_key)
    assert final["body"] == "Hello Zed"
    # The same request once more, after it finished: the same answer, no new run.
    again = call(
        live_server, "GET", "/api/resources/greeting?name=Zed", key=caller_key, headers=headers
    )
    assert as_json(again)["processId"] == as_json(responses[0])["processId"]
    assert Execution.objects.count() == 1


def test_an_unavailable_broker_is_503_and_nothing_is_left_behind(
    live_server, greeting, caller_key, broker_down
):
    greeting.api = {**greeting.api, "mode": "async"}
    greeting.save()
    response = call(live_server, "GET", "/api/resources/greeting?name=X", key=caller_key)
    assert response.status == 503
    assert response.headers["Retry-After"] == "5"
    assert "Nothing was started" in as_json(response)["detail"]
    assert not Execution.objects.exists()
