"""A worker SIGKILLed mid-run leaves no execution 'running' forever."""

import os
import signal
import threading
import time
from datetime import timedelta

import pytest
from werkzeug.wrappers import Response

from apps.executions import services
from apps.executions.models import Execution
from apps.flows.models import Export, Flow
from tests.conftest import wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_a_killed_worker_s_execution_is_recovered_as_failed(
    embedded_broker, start_worker, httpserver, application, local_api, owner
):
    client, env = embedded_broker
    env = {**env, "FLOWSITE_STALE_EXECUTION_SECONDS": "1"}
    release = threading.Event()
    reached = threading.Event()

    def slow(request):
        reached.set()
        release.wait(30)
        return Response("[]", content_type="application/json")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    export = Export.objects.create(name="Slow", connection=local_api, relative_uri="/slow")
    flow = Flow.objects.create(
        application=application, name="slow", page_generators=[{"_exportId": str(export.pk)}]
    )
    execution = services.create_execution(flow=flow, trigger=Execution.Trigger.RUN, caller=owner)

    worker = start_worker(**env)
    try:
        client.send_task("flowsite.run_execution", args=[str(execution.pk)])
        assert reached.wait(30), f"the worker never called the slow API:\n{worker.log()}"
        execution.refresh_from_db()
        assert execution.status == "running"

        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.wait(10)
        time.sleep(1.5)  # longer than FLOWSITE_STALE_EXECUTION_SECONDS without a heartbeat
        execution.refresh_from_db()
        assert execution.status == "running"  # nothing has noticed yet

        recovery = start_worker(**env)
        client.send_task("flowsite.recover_stale_executions")

        def recovered():
            execution.refresh_from_db()
            return execution.status != "running"

        wait_for(recovered, timeout=30, message=f"recovery; worker log:\n{recovery.log()}")
    finally:
        release.set()
    assert execution.status == "failed"
    assert "worker was killed or crashed" in execution.error
    assert execution.finished_at is not None


def test_recovery_does_not_wait_behind_a_backlog_of_runs(
    embedded_broker, start_worker, httpserver, application, local_api, owner, settings
):
    """Housekeeping has its own queue, which workers take from in turn with the runs': a
    dead run is failed after at most one run of a backlog, not after all of it."""
    client, env = embedded_broker
    client.conf.task_routes = settings.CELERY_TASK_ROUTES  # as the app's beat sends it
    httpserver.expect_request("/slow").respond_with_handler(
        lambda request: time.sleep(0.3) or Response("[]", content_type="application/json")
    )
    export = Export.objects.create(name="Slow", connection=local_api, relative_uri="/slow")
    flow = Flow.objects.create(
        application=application, name="slow", page_generators=[{"_exportId": str(export.pk)}]
    )
    dead = services.create_execution(flow=flow, trigger=Execution.Trigger.RUN, caller=owner)
    Execution.objects.filter(pk=dead.pk).update(
        status="running", heartbeat_at=services.timezone.now() - timedelta(hours=1)
    )
    backlog = [
        services.create_execution(flow=flow, trigger=Execution.Trigger.RUN, caller=owner)
        for _ in range(10)
    ]
    for execution in backlog:
        client.send_task("flowsite.run_execution", args=[str(execution.pk)])
    client.send_task("flowsite.recover_stale_executions")

    worker = start_worker(**env, FLOWSITE_STALE_EXECUTION_SECONDS="60")

    def recovered():
        dead.refresh_from_db()
        return dead.status != "running"

    wait_for(recovered, timeout=60, message=f"recovery; worker log:\n{worker.log()}")
    ended = Execution.objects.filter(pk__in=[e.pk for e in backlog], finished_at__isnull=False)
    assert dead.status == "failed"
    assert ended.count() <= 2, "the recovery waited behind the backlog of runs"


def test_recovery_leaves_live_runs_alone(application, owner, settings):
    flow = Flow.objects.create(application=application, name="live")
    execution = services.create_execution(flow=flow, trigger=Execution.Trigger.RUN, caller=owner)
    Execution.objects.filter(pk=execution.pk).update(
        status="running", heartbeat_at=services.timezone.now()
    )
    settings.FLOWSITE_STALE_EXECUTION_SECONDS = 60
    assert services.recover_stale_executions() == []
