"""A database whose write lock another program holds (SQLite: a long transaction, a backup,
a sqlite3 shell): sync calls are answered 503 `database-unavailable` once
DB_LOCK_TIMEOUT_MS has passed, while the lock is still held. An outside probe's call
waited 99 s, the whole time the lock was held: its run's outcome was stored again and
again, each try waiting the whole timeout, and the calls queued behind it did the same."""

import sqlite3
import threading

import pytest
from django.conf import settings
from django.db import connection
from werkzeug.wrappers import Response

from apps.core import group_commit
from apps.core.sqlite_backend.base import DatabaseWrapper
from apps.executions import launch, services
from apps.executions.models import Execution
from apps.flows.models import Export, Flow
from tests.conftest import sqlite_only
from tests.executions.conftest import as_json, call

pytestmark = [sqlite_only, pytest.mark.django_db(transaction=True)]
CALLERS = 4


@pytest.fixture
def short_lock_timeout(monkeypatch):
    monkeypatch.setitem(settings.DATABASES["default"]["OPTIONS"], "timeout", 1)


@pytest.fixture
def transactions_begun(monkeypatch) -> list[int]:
    """One entry per write transaction a connection tried to begin."""
    begun = []
    start = DatabaseWrapper._start_transaction_under_autocommit

    def counted(self):
        begun.append(1)
        return start(self)

    monkeypatch.setattr(DatabaseWrapper, "_start_transaction_under_autocommit", counted)
    return begun


@pytest.fixture
def held_write_lock():
    """Another program's transaction holding SQLite's write lock until the test ends."""
    holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield
    holder.execute("ROLLBACK")
    holder.close()


def test_sync_calls_are_answered_503_while_the_lock_is_still_held(
    live_server, greeting, caller_key, short_lock_timeout, caplog
):
    assert call(live_server, "GET", "/api/resources/greeting?name=a", key=caller_key).status == 200
    answers = []

    def caller(number: int) -> None:
        answers.append(
            call(live_server, "GET", f"/api/resources/greeting?name={number}", key=caller_key)
        )

    holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        threads = [threading.Thread(target=caller, args=(n,)) for n in range(CALLERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:  # released only once every caller has its answer
        holder.execute("ROLLBACK")
        holder.close()

    assert [answer.status for answer in answers] == [503] * CALLERS
    for answer in answers:
        assert as_json(answer)["type"] == "urn:flowsite:problem:database-unavailable"
        assert answer.headers["Retry-After"] == "5"
    assert "trying again" not in caplog.text  # no outcome stored again and again
    assert Execution.objects.count() == 1  # the first call's; the others left none behind


def test_a_batch_that_cannot_begin_fails_as_a_whole_not_each_write_again(
    short_lock_timeout, transactions_begun, held_write_lock
):
    errors = []
    lead_started = threading.Event()

    def caller() -> None:
        try:
            group_commit.run(lambda: None)
        except Exception as exc:
            errors.append(str(exc))
        finally:
            connection.close()

    def leader() -> None:
        lead_started.set()
        caller()

    threads = [threading.Thread(target=leader)]
    threads[0].start()
    lead_started.wait(5)
    threads += [threading.Thread(target=caller) for _ in range(CALLERS)]
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(errors) == CALLERS + 1
    assert all("database is locked" in error for error in errors)
    # The leader's write alone, then the others' together: not each of them again alone.
    assert len(transactions_begun) <= 3


def test_readyz_says_not_ready_while_the_write_lock_is_held(client, held_write_lock):
    """It said ready while nothing could be written (the outside probe)."""
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unavailable"


def test_a_workers_run_outlasts_a_lock_to_store_its_outcome(
    short_lock_timeout, httpserver, application, local_api, owner
):
    """No caller waits on a worker: its run's outcome is stored once the lock is gone, not
    given up after one DB_LOCK_TIMEOUT_MS (left for housekeeping to call a crash)."""
    holder = sqlite3.connect(
        connection.settings_dict["NAME"], isolation_level=None, check_same_thread=False
    )

    def lock_for_a_while(request):
        holder.execute("BEGIN IMMEDIATE")
        threading.Timer(1.5, holder.execute, args=["ROLLBACK"]).start()
        return Response("[]", content_type="application/json")

    httpserver.expect_request("/leads").respond_with_handler(lock_for_a_while)
    export = Export.objects.create(name="Leads", connection=local_api, relative_uri="/leads")
    flow = Flow.objects.create(
        application=application, name="leads", page_generators=[{"_exportId": str(export.pk)}]
    )
    execution = services.create_execution(flow=flow, trigger=Execution.Trigger.RUN, caller=owner)

    try:
        run = launch.run_queued(str(execution.pk))
    finally:
        holder.close()

    assert run.status == "succeeded"
    execution.refresh_from_db()
    assert execution.status == "succeeded"
