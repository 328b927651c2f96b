"""A run starts only by a conditional claim (queued → running for its id): of many
processes or threads racing for one run (a redelivered task, a duplicate message), exactly
one gets it. Real threads, each with its own database connection."""

import threading

import pytest
from django.db import connections

from apps.executions import selectors, services
from apps.executions.models import Execution
from apps.flows.models import Flow

pytestmark = pytest.mark.django_db(transaction=True)


def race(execution_id, contenders: int = 8) -> list[str]:
    start = threading.Barrier(contenders)
    outcomes: list[str] = []

    def contend() -> None:
        try:
            start.wait(10)
            # Each as a worker does: its own read of the run, then the claim.
            outcomes.append(services.claim(selectors.run_with_flow(execution_id)))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=contend) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return sorted(outcomes)


@pytest.mark.parametrize("max_concurrency", [0, 5], ids=["unlimited", "limited"])
def test_of_many_claims_of_one_run_exactly_one_wins(application, max_concurrency):
    flow = Flow.objects.create(
        application=application, name="raced", max_concurrency=max_concurrency
    )
    execution = services.create_execution(flow=flow, trigger=Execution.Trigger.RUN, for_worker=True)
    assert race(execution.pk) == ["claimed"] + ["gone"] * 7
    execution.refresh_from_db()
    assert execution.status == Execution.Status.RUNNING
    assert execution.started_at is not None
    assert services.claim(execution) == "gone"


def test_a_cancelled_run_is_not_claimed(application):
    flow = Flow.objects.create(application=application, name="cancelled")
    execution = services.create_execution(flow=flow, trigger=Execution.Trigger.RUN, for_worker=True)
    services.cancel_execution(execution)
    assert services.claim(execution) == "gone"
    execution.refresh_from_db()
    assert execution.status == Execution.Status.CANCELLED
