"""A run's outcome is stored even when the database connection breaks as the run ends (a
restart, a failover, a session ended by an administrator): found by an outside probe, who
saw runs that had called out recorded failed, and their callers told so."""

import pytest
from django.db import OperationalError
from rest_framework.test import APIClient

from apps.core import rows
from apps.executions import services
from apps.executions.models import Execution
from tests.executions.honest import script_flow

pytestmark = pytest.mark.django_db(transaction=True)  # group commit outside a test's atomic


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

    response = APIClient().post("/api/resources/ends", {}, format="json")

    assert breaking_connection  # the first attempt failed
    assert response.status_code == 200, response.content
    assert response.json() == "done"
    run = Execution.objects.get(pk=breaking_connection[0])
    assert (run.status, run.status_code) == ("succeeded", 200)
