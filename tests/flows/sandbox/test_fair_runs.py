"""The fair sandbox seen from whole runs: the admin's Test run and flow calls over HTTP."""

import threading
import time

import pytest

from apps.accounts.services import create_api_key
from apps.executions import launch
from apps.flows.models import Application, Flow, Script
from apps.flows.sandbox import pool as pool_module
from tests.executions.conftest import as_json, call

REMEMBER = (
    "function main(ctx) { var seen = globalThis.seen || []; "
    "seen.push(ctx.trigger.args.input.who); globalThis.seen = seen; return {seen} }"
)


def script_flow(application, name, source, **fields) -> Flow:
    script = Script.objects.create(name=name, content=source)
    return Flow.objects.create(
        application=application,
        name=name,
        page_processors=[{"type": "script", "_scriptId": str(script.pk)}],
        **fields,
    )


@pytest.fixture
def fair_settings(settings, monkeypatch):
    """A fresh process-wide pool of two processes: a flow's share is one, a call waits 300 ms."""
    settings.FLOWSITE_SANDBOX_PROCESSES = 2
    settings.FLOWSITE_SCRIPT_SLOTS_PER_FLOW = 1
    settings.FLOWSITE_SCRIPT_QUEUE_MS = 300
    settings.FLOWSITE_SCRIPT_TIMEOUT_MS = 2000
    monkeypatch.setattr(pool_module, "_pool", None)
    yield
    if pool_module._pool is not None:
        pool_module._pool.close()


@pytest.mark.django_db
def test_a_global_one_test_run_sets_is_not_seen_by_the_next(fair_settings, application, owner):
    remember = script_flow(application, "remember", REMEMBER)

    seen = []
    for who in ("A", "B"):
        execution = launch.admin_test_run(
            remember, caller=launch.Caller(user=owner), input={"who": who}
        )
        assert execution.status == "succeeded", execution.error
        seen.append(execution.response["data"]["records"])

    assert seen == [[{"seen": ["A"]}], [{"seen": ["B"]}]]


@pytest.mark.django_db(transaction=True)
def test_while_one_flow_loops_another_answers_and_its_own_extra_call_gets_503_retry_after(
    fair_settings, live_server, integration
):
    key = create_api_key(owner=integration).plaintext
    application = Application.objects.create(name="Fairness")
    api = {"enabled": True, "method": "GET", "mode": "sync"}
    script_flow(
        application, "spin", "function main() { while (true) {} }", api=api | {"path": "/spin"}
    )
    script_flow(
        application,
        "greet",
        "function main() { return {statusCode: 200, result: 'hello'} }",
        api=api | {"path": "/greet"},
    )
    first = []
    holder = threading.Thread(
        target=lambda: first.append(call(live_server, "GET", "/api/resources/spin", key=key))
    )
    holder.start()
    deadline = time.monotonic() + 10
    while not (pool_module._pool and pool_module._pool.running()):
        assert time.monotonic() < deadline, "the looping run never got a sandbox process"
        time.sleep(0.01)

    extra = call(live_server, "GET", "/api/resources/spin", key=key)
    other = call(live_server, "GET", "/api/resources/greet", key=key)
    holder.join(timeout=15)

    assert extra.status == 503, extra.data
    assert extra.headers["Retry-After"]
    assert "Retry later." in as_json(extra)["detail"]
    assert (other.status, as_json(other)) == (200, "hello")
    assert first[0].status == 500  # the looping run itself stopped at its CPU-time limit
