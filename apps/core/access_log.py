"""The web server's access log without a line per static file: one admin page asks for a
dozen of them, and `make run`'s terminal is where a builder reads what happened."""

import logging

from django.conf import settings


class WithoutStaticFiles(logging.Filter):
    """Drops Granian's access lines of static files that were served (errors stay)."""

    def filter(self, record: logging.LogRecord) -> bool:
        entry = record.args if isinstance(record.args, dict) else {}
        path, status = str(entry.get("path", "")), entry.get("status")
        static = settings.STATIC_URL or "/static/"
        served = isinstance(status, int) and status < 400
        return not (served and path.startswith(static if static.startswith("/") else "/" + static))


def quiet_static_files() -> None:
    logging.getLogger("granian.access").addFilter(WithoutStaticFiles())
