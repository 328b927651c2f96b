"""What a bad day does to runs: lost task messages, too many waiting callers, huge answers,
a broker that is down during a retry, a restricted key polling another flow's run."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.services import create_api_key
from apps.executions import launch, queue, services
from apps.executions.models import Execution
from apps.flows.models import Flow
from tests.executions.conftest import as_json, call
from tests.executions.honest import script_flow

PROBLEM = "application/problem+json"


@pytest.fixture
def sent(monkeypatch):
    messages: list[str] = []
    monkeypatch.setattr(queue, "send_run", messages.append)
    return messages


def _queued(flow: Flow, *, minutes_ago: int, **fields) -> Execution:
    run = services.create_execution(flow=flow, trigger="run", for_worker=True)
    Execution.objects.filter(pk=run.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago), **fields
    )
    return run


def test_a_run_whose_message_was_lost_is_queued_again_once_then_failed(sales, sent, settings):
    settings.FLOWSITE_LOST_RUN_SECONDS = 60
    flow = Flow.objects.create(application=sales, name="lost")
    lost = _queued(flow, minutes_ago=5)
    waiting = _queued(flow, minutes_ago=5, heartbeat_at=timezone.now())  # a worker looks
    fresh = _queued(flow, minutes_ago=0)

    assert launch.requeue_lost_runs() == (1, 0)
    assert sent == [str(lost.pk)]
    assert launch.requeue_lost_runs() == (0, 0)  # once: not again within the period

    later = timezone.now() + timedelta(minutes=2)
    Execution.objects.filter(pk=waiting.pk).update(heartbeat_at=later)
    Execution.objects.filter(pk=fresh.pk).update(heartbeat_at=later)
    assert launch.requeue_lost_runs(now=later) == (0, 1)
    lost.refresh_from_db()
    assert (lost.status, lost.status_code) == ("failed", 500)
    assert "task message was lost" in lost.error
    assert set(Execution.objects.filter(status="queued").values_list("pk", flat=True)) == {
        waiting.pk,
        fresh.pk,
    }


def test_a_busy_claim_shows_that_a_worker_looked_at_the_run(sales):
    flow = Flow.objects.create(application=sales, name="one at a time", max_concurrency=1)
    Execution.objects.filter(pk=_queued(flow, minutes_ago=9).pk).update(status="running")
    waiting = _queued(flow, minutes_ago=9)
    assert services.claim(waiting) == "busy"
    waiting.refresh_from_db()
    assert waiting.heartbeat_at > timezone.now() - timedelta(minutes=1)


def test_sync_callers_beyond_the_waiting_room_get_503_and_leave_nothing(
    live_server, greeting, caller_key, monkeypatch
):
    Flow.objects.filter(pk=greeting.pk).update(max_concurrency=1, concurrency_policy="queue")
    services.create_execution(flow=greeting, trigger="run", status="running")
    monkeypatch.setattr(launch, "_waiting", threading.BoundedSemaphore(1))
    launch._waiting.acquire()  # the only place is taken
    answer = call(live_server, "GET", "/api/resources/greeting?name=Al", key=caller_key)
    assert answer.status == 503
    assert answer.headers["Content-Type"].startswith(PROBLEM)
    assert answer.headers["Retry-After"] == "1"
    assert as_json(answer)["type"].endswith("too-many-waiting")
    assert Execution.objects.filter(trigger="api").count() == 0


def test_an_answer_over_the_limit_fails_the_run_and_is_neither_sent_nor_stored(
    live_server, sales, caller_key, settings
):
    settings.FLOWSITE_MAX_RESPONSE_BYTES = 1000
    script_flow(
        sales,
        "huge",
        "function main(ctx) { return {statusCode: 200, body: 'x'.repeat(5000)}; }",
        api={"enabled": True, "method": "GET", "path": "/huge"},
    )
    answer = call(live_server, "GET", "/api/resources/huge", key=caller_key)
    assert answer.status == 500
    document = as_json(answer)
    assert document["type"] == "urn:flowsite:problem:response-too-large"
    run = Execution.objects.get(pk=document["processId"])
    assert (run.status, run.response) == ("failed", None)
    assert "FLOWSITE_MAX_RESPONSE_BYTES" in run.error


@pytest.mark.django_db(transaction=True)
def test_a_retry_while_the_broker_is_down_is_503_and_leaves_no_run(
    manager, monkeypatch, application
):
    def broker_down(execution_id):
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    flow = script_flow(application, "to retry", "function main(ctx) { throw new Error('x'); }")
    job = services.create_execution(flow=flow, trigger="run", for_worker=True)
    job = launch.run_queued(job.pk)
    assert job.status == "failed"
    monkeypatch.setattr(queue, "send_run", broker_down)
    answer = manager.post(f"/api/v1/jobs/{job.pk}/retry")
    assert answer.status_code == 503
    assert answer["Retry-After"] == "5"
    assert answer.json()["type"].endswith("broker-unavailable")
    assert not Execution.objects.filter(trigger="retry").exists()


def test_a_key_restricted_to_a_flow_polls_only_that_flows_runs(
    live_server, greeting, sales, integration
):
    other = Flow.objects.create(application=sales, name="other")
    mine = create_api_key(owner=integration)
    restricted = create_api_key(owner=integration, flows=[greeting])
    run = services.create_execution(flow=other, trigger="api", caller=integration)
    poll = f"/api/1/action/Sales%20Ops/other/poll/{run.pk}"
    assert call(live_server, "GET", poll, key=mine.plaintext).status == 200
    assert call(live_server, "GET", poll, key=restricted.plaintext).status == 404


def test_html_in_a_flow_answer_cannot_act_as_a_page_of_the_admin(live_server, sales, caller_key):
    script_flow(
        sales,
        "page",
        "function main(ctx) { return {statusCode: 200, headers: {'Content-Type': 'text/html', "
        "'Content-Security-Policy': \"default-src 'none'\"}, "
        "body: '<script>fetch(\"/admin/\")</script>'}; }",
        api={"enabled": True, "method": "GET", "path": "/page"},
    )
    answer = call(live_server, "GET", "/api/resources/page", key=caller_key)
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    # The flow's own policy is added to the sandbox: it can only be stricter.
    assert answer.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"


def test_the_session_and_csrf_cookies_are_out_of_scripts_reach(client, admin_user):
    login = client.get("/admin/login/")
    assert login.cookies["csrftoken"]["httponly"]
    signed_in = client.post(
        "/admin/login/?next=/admin/", {"username": admin_user.username, "password": "password"}
    )
    assert signed_in.status_code == 302
    assert signed_in.cookies["sessionid"]["httponly"]


def test_running_a_flow_from_the_management_api_honours_its_roles(manager, sales):
    flow = Flow.objects.create(
        application=sales, name="partners only", api={"enabled": True, "roles": ["Partners"]}
    )
    refused = manager.post(f"/api/v1/flows/{flow.pk}/run", {}, format="json")
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("role-required")
    assert refused.json()["roles"] == ["Partners"]
    assert not Execution.objects.exists()


def test_secret_names_found_in_the_wild_are_redacted_in_stored_runs(
    live_server, sales, caller_key, manager
):
    script_flow(
        sales,
        "webhook",
        "function main(ctx) { return {statusCode: 204}; }",
        api={"enabled": True, "method": "POST", "path": "/webhook"},
    )
    secrets = {
        "Ocp-Apim-Subscription-Key": "sub-1111-aaaa",
        "X-Access-Key": "acc-2222-bbbb",
        "X-Signature": "sig-3333-cccc",
    }
    answer = call(
        live_server,
        "POST",
        "/api/resources/webhook?key=key-4444-dddd&sig=sig-5555-eeee&name=Leor",
        key=caller_key,
        headers=secrets,
        body={"pin": "6666", "passphrase": "pass-7777-ffff", "name": "Leor"},
    )
    assert answer.status == 204
    run = Execution.objects.get()
    job = manager.get(f"/api/v1/jobs/{run.pk}").json()
    stored = str(run.request) + str(run.input) + str(job)
    for value in [*secrets.values(), "key-4444-dddd", "sig-5555-eeee", "6666", "pass-7777-ffff"]:
        assert value not in stored, value
    assert run.request["query"]["name"] == "Leor"  # what is not secret stays
