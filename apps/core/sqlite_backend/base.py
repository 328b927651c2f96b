"""SQLite, with this process's writers queuing on a lock before SQLite's write lock.

SQLite lets one writer in at a time (Flowsite's transactions are BEGIN IMMEDIATE). A
writer that finds the lock taken is put to sleep by SQLite's busy handler, in steps of up
to 100 ms, and tries again: with 16 request threads recording runs, threads slept while
the lock was free, and a call's p99 reached a second (BENCHMARKS.md, "Hot path"). Here the
threads of one process wait on a Python lock instead and the next one goes in as soon as
the previous one commits. Writers of other processes (the other web workers, Celery) are
waited for by retrying BEGIN every 0.1 to 2 ms, not by SQLite's busy handler.

A writer waits up to the database's `timeout` (DB_LOCK_TIMEOUT_MS) in all, for this
process's other writers and then for other processes', and fails with "database is
locked" past it, as it did with SQLite's wait alone.

Case-insensitive lookups (`icontains` and the like) compare both sides lowered by Python,
as PostgreSQL's ILIKE does: SQLite's LIKE folds ASCII letters only, so "ÄRZTE" did not
contain "ärzte" on SQLite, and Query()'s `contains` and the admin's search answered
differently there.
"""

import threading
import time

from django.db import OperationalError
from django.db.backends.sqlite3 import base, operations

FOLDED_LOOKUPS = ("iexact", "icontains", "istartswith", "iendswith")


def _lower(text):
    return text.lower() if isinstance(text, str) else text


class DatabaseOperations(operations.DatabaseOperations):
    def lookup_cast(self, lookup_type, internal_type=None):
        if lookup_type in FOLDED_LOOKUPS:
            return "flowsite_lower(%s)"
        return super().lookup_cast(lookup_type, internal_type)


class DatabaseWrapper(base.DatabaseWrapper):
    _writers = threading.Lock()  # one per process: every thread's connection shares it
    ops_class = DatabaseOperations
    operators = {
        **base.DatabaseWrapper.operators,
        **{
            name: base.DatabaseWrapper.operators[name].replace("%s", "flowsite_lower(%s)")
            for name in FOLDED_LOOKUPS
        },
    }

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        connection.create_function("flowsite_lower", 1, _lower, deterministic=True)
        return connection

    def _start_transaction_under_autocommit(self):
        timeout = float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
        deadline = time.monotonic() + timeout
        if not self._writers.acquire(timeout=timeout):
            raise OperationalError(
                f"database is locked: this process's other writers held it for {timeout:g} s"
            )
        self._holds_writer_lock = True
        try:
            self._begin_immediate(deadline, timeout)
        except BaseException:
            self._release_writer_lock()
            raise

    def _begin_immediate(self, deadline: float, timeout: float) -> None:
        """BEGIN, retried every 0.1 to 2 ms while another process writes, until `deadline`.

        SQLite's busy handler sleeps in steps of up to 100 ms and may sleep on while the
        lock is free; it is off (busy_timeout 0) for the BEGIN only. Once BEGIN IMMEDIATE
        holds the write lock, the transaction's statements wait on nothing but readers."""
        raw = self.connection.cursor()
        raw.execute("PRAGMA busy_timeout = 0")
        try:
            pause = 0.0001
            while True:
                try:
                    self.cursor().execute(f"BEGIN {self.transaction_mode or ''}".strip())
                    return
                except OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                time.sleep(pause)
                pause = min(pause * 2, 0.002)
        finally:
            raw.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            raw.close()

    def _release_writer_lock(self):
        if getattr(self, "_holds_writer_lock", False):
            self._holds_writer_lock = False
            self._writers.release()

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._release_writer_lock()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._release_writer_lock()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._release_writer_lock()
