"""Helpers for the operator-facing start-up path (one clear line, never a traceback)."""

import contextlib
import os
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings


def describe_database() -> str:
    """The configured database URL with any password masked."""
    parts = urlsplit(settings.DATABASE_URL)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


def check_database() -> str | None:
    """None when the database answers, else a one-line reason."""
    from django.db import connection
    from django.db.utils import Error

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Error as exc:
        lines = str(exc).strip().splitlines()
        return lines[0] if lines else type(exc).__name__
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
