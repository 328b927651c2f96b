"""A worker keeps its database connection from run to run (CELERY_DB_REUSE_MAX, with the
connection checked before each task like a request's): Celery's default opened a new one
for every run, several milliseconds each on PostgreSQL. A real worker, real runs."""

import pytest
from django.db import connection

from apps.executions import services
from apps.executions.models import Execution
from apps.executions.queue import RUN_TASK
from apps.flows.models import Flow
from tests.conftest import postgresql_only, wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True), postgresql_only]


def sessions_ended() -> int:
    """How many connections to the test database have ended so far (PostgreSQL 14+)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sessions - numbackends FROM pg_stat_database WHERE datname = current_database()"
        )
        return cursor.fetchone()[0]


def test_a_worker_runs_one_run_after_another_on_one_connection(
    application, embedded_broker, start_worker
):
    client, env = embedded_broker
    flow = Flow.objects.create(application=application, name="nothing to do")
    worker = start_worker(**env)

    def run_one() -> Execution:
        execution = services.create_execution(
            flow=flow, trigger=Execution.Trigger.RUN, for_worker=True
        )
        client.send_task(RUN_TASK, args=[str(execution.pk)])
        return wait_for(
            lambda: Execution.objects.filter(
                pk=execution.pk, status__in=Execution.TERMINAL
            ).first(),
            timeout=30,
            message=f"worker log:\n{worker.log()}",
        )

    assert run_one().status == Execution.Status.SUCCEEDED  # the worker is connected
    ended = sessions_ended()
    for _ in range(5):
        assert run_one().status == Execution.Status.SUCCEEDED
    # Celery's default closes the connection after each run: 5 sessions would have ended.
    assert sessions_ended() - ended <= 1
