"""apps/core/postgresql_backend: the health check of a kept connection asks the server
nothing while the connection is healthy, and still replaces one the server ended."""

import select
import time

import psycopg
import pytest
from django.db import connection

from tests.conftest import postgresql_only

pytestmark = [postgresql_only, pytest.mark.django_db(transaction=True)]


def other_session():
    return psycopg.connect(**connection.get_connection_params(), autocommit=True)


def last_statement(pid: int) -> str:
    with other_session() as session:
        return session.execute(
            "SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]
        ).fetchone()[0]


def next_request_checks():
    """What Django does at the start of a request (close_old_connections) that makes the
    first query of the request check the kept connection."""
    connection.health_check_done = False


def test_a_healthy_kept_connection_is_checked_without_a_statement():
    assert connection.settings_dict["CONN_HEALTH_CHECKS"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'the last statement'")
    pid = connection.connection.info.backend_pid
    next_request_checks()
    with connection.cursor() as cursor:  # the check runs here, before the cursor
        assert connection.connection.info.backend_pid == pid  # kept
        assert last_statement(pid) == "SELECT 'the last statement'"  # no SELECT 1 was sent
        cursor.execute("SELECT 2")
        assert cursor.fetchone() == (2,)


def test_a_connection_the_server_ended_is_replaced_before_the_request_uses_it():
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    with other_session() as session:
        session.execute("SELECT pg_terminate_backend(%s)", [pid])
    # The server's goodbye reaches the socket.
    poller = select.poll()
    poller.register(connection.connection.pgconn.socket, select.POLLIN)
    deadline = time.monotonic() + 5
    while not poller.poll(50) and time.monotonic() < deadline:
        pass
    next_request_checks()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (new_pid,) = cursor.fetchone()
    assert new_pid != pid
