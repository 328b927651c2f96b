"""PostgreSQL, with a health check that costs no round trip while the connection is healthy.

Django checks a kept connection (CONN_HEALTH_CHECKS) before the first query of every
request by sending `SELECT 1` and waiting for the answer. For a Query() page, which is one
statement, that doubled the statements and the round trips: under load (bench/query.py,
c=16) a third of the request threads' samples were waiting for that `SELECT 1`.

A server that ends a session (a restart, `pg_terminate_backend`, an idle timeout) sends
an error and closes the socket, so the socket of an idle connection becomes readable. An
idle, healthy connection has nothing to read: PostgreSQL sends nothing unasked outside a
command, as Flowsite does not LISTEN. So the check looks at the socket first, without
waiting. Only when something is there does it ask the server with Django's `SELECT 1`,
which reads what was sent: the error closes the connection and the request gets a new
one. A connection that is not idle, or that libpq itself knows is bad, is checked the same
way.

What neither check can tell (a peer gone without closing the socket, as after a network
partition) fails the request's first query. Django then closes the connection, and the
next request gets a new one.
"""

import select

import psycopg
from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        if self.connection is None:
            return False
        pgconn = self.connection.pgconn
        if (
            self.connection.closed
            or pgconn.status != pq.ConnStatus.OK
            or pgconn.transaction_status != pq.TransactionStatus.IDLE
        ):
            return super().is_usable()
        try:
            poller = select.poll()
            poller.register(pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
            pending = poller.poll(0)
        except (OSError, ValueError, psycopg.Error):
            return super().is_usable()
        return super().is_usable() if pending else True
