#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flowsite.settings")
    from django.core.management import execute_from_command_line
    from django.db.utils import OperationalError

    try:
        execute_from_command_line(sys.argv)
    except OperationalError as exc:
        # An unreachable or locked database is an operator problem: one clear line,
        # not a traceback.
        from apps.core.startup import describe_database

        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        sys.exit(f"flowsite: cannot use the database {describe_database()}: {first_line}")


if __name__ == "__main__":
    main()
