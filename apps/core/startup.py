"""Helpers for the operator-facing start-up path (one clear line, never a traceback)."""

import contextlib
import os
import sqlite3
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings


def describe_database() -> str:
    """The configured database URL with any password masked."""
    parts = urlsplit(settings.DATABASE_URL)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


WRITE_CHECK_SECONDS = 2.0


def check_database(*, writable: bool = False) -> str | None:
    """None when the database answers (and, with `writable`, could take a write now), else a
    one-line reason."""
    from django.db import connection
    from django.db.utils import Error

    try:
        with connection.cursor() as cursor:
            if not writable:
                cursor.execute("SELECT 1")
            elif connection.vendor == "postgresql":
                cursor.execute("SELECT current_setting('transaction_read_only')")
                if cursor.fetchone()[0] == "on":
                    return "the database is read-only (a replica, or a failover under way)"
        # In a transaction, this connection holds SQLite's write lock already.
        if writable and connection.vendor == "sqlite" and not connection.in_atomic_block:
            return _sqlite_write_lock(connection.settings_dict["NAME"])
    except Error as exc:
        lines = str(exc).strip().splitlines()
        return lines[0] if lines else type(exc).__name__
    return None


def _sqlite_write_lock(path: str) -> str | None:
    """Whether SQLite's write lock can be had within WRITE_CHECK_SECONDS (another program's
    long transaction holds it otherwise), taken and given back at once."""
    try:
        with contextlib.closing(
            sqlite3.connect(path, timeout=WRITE_CHECK_SECONDS, isolation_level=None)
        ) as probe:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return f"cannot write: {exc} (for {WRITE_CHECK_SECONDS:g} s)"
    return None


def check_broker(timeout: float = 2.0) -> str | None:
    """None when the Celery broker accepts a connection, else a one-line reason."""
    from flowsite.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:  # kombu raises transport-specific errors
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    return None


def _notice_path():
    return settings.VAR_DIR / "first-run-notice.txt"


def leave_notice(text: str) -> None:
    """Keep what the first `make run` must tell (the admin password, the demo key) for
    `serve` to print once everything is up, where its banners cannot scroll it away.
    Readable by this user only; `serve` deletes it once printed."""
    path = _notice_path()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as notice:
        notice.write(text)


def take_notice() -> str | None:
    """The notice left by bootstrap, removed as it is read (None when there is none)."""
    path = _notice_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return text
