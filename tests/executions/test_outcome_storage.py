"""A run's outcome is stored even when the database connection breaks as the run ends (a
restart, a failover, a session ended by an administrator): found by an outside probe, who
saw runs that had called out recorded failed, and their callers told so."""

import logging

import pytest
from django.db import OperationalError
from rest_framework.test import APIClient

from apps.core import group_commit, rows
from apps.executions import services
from apps.executions.models import Execution
from tests.executions.honest import script_flow

pytestmark = pytest.mark.django_db(transaction=True)  # group commit outside a test's atomic


def ending_flow(application) -> None:
    """An anonymous sync flow at POST /api/resources/ends that answers "done"."""
    script_flow(
        application,
        "ends",
        "function main(ctx) { return {statusCode: 200, result: 'done'}; }",
        api={
            "enabled": True,
            "method": "POST",
            "path": "/ends",
            "mode": "sync",
            "allowAnonymous": True,
        },
    )


@pytest.fixture
def breaking_connection(monkeypatch):
    """The first write of a run fails as a terminated session does."""
    monkeypatch.setattr(services, "STORE_RETRY_PAUSES", (0.01, 0.01, 0.01), raising=False)
    insert, broke = rows.insert, []

    def breaks_once(instances):
        if not broke and instances and isinstance(instances[0], Execution):
            broke.append(instances[0].pk)
            raise OperationalError("terminating connection due to administrator command")
        return insert(instances)

    monkeypatch.setattr(rows, "insert", breaks_once)
    return broke


def test_a_run_whose_connection_broke_as_it_ended_is_stored_as_it_ended(
    application, breaking_connection
):
    ending_flow(application)

    response = APIClient().post("/api/resources/ends", {}, format="json")

    assert breaking_connection  # the first attempt failed
    assert response.status_code == 200, response.content
    assert response.json() == "done"
    run = Execution.objects.get(pk=breaking_connection[0])
    assert (run.status, run.status_code) == ("succeeded", 200)


def test_an_outcome_committed_whose_acknowledgement_was_lost_is_not_written_twice(
    application, monkeypatch, caplog
):
    """The commit landed, then the connection broke before it said so: the next attempt
    finds the run ended and stops, instead of writing it again (the review of the first
    version: a duplicate row failed the caller of a run that had succeeded)."""
    monkeypatch.setattr(services, "STORE_RETRY_PAUSES", (0.01, 0.01, 0.01), raising=False)
    run_writes, lost = group_commit.run, []

    def commits_then_breaks(write):
        run_writes(write)
        if not lost:
            lost.append(1)
            raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(group_commit, "run", commits_then_breaks)
    ending_flow(application)

    with caplog.at_level(logging.WARNING, logger="apps.executions.services"):
        response = APIClient().post("/api/resources/ends", {}, format="json")

    assert lost
    assert response.status_code == 200, response.content
    run = Execution.objects.get()
    assert (run.status, run.steps.count()) == ("succeeded", 1)
    # Neither written again (a duplicate step) nor taken for another's late ending.
    assert [r.getMessage().split(": ", 1)[-1] for r in caplog.records] == [
        "its outcome could not be stored; trying again in 0.01 s"
    ]
