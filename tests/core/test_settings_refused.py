"""A setting that cannot work stops every command with one line naming it and saying what
to use, before anything starts: an outside probe found some accepted (a negative body
limit, no web workers, no Celery workers: `make run` came up and lost its one-time
password, or took no job) and others answered with a traceback."""

import subprocess
import sys

import pytest

from apps.core.management.commands.serve import Command
from tests.conftest import BASE_DIR, subprocess_env


def check_with(tmp_path, **env: str) -> subprocess.CompletedProcess:
    """`manage.py check` in a process of its own with these variables set."""
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env=subprocess_env(FLOWSITE_VAR_DIR=str(tmp_path), **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("PORT", "abc", "PORT='abc' is not a whole number."),
        ("PORT", "70000", "PORT='70000' is out of range: use 1 to 65535."),
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean: use 1/0, true/false."),
        ("TIME_ZONE", "Mars/Base", "TIME_ZONE='Mars/Base' is not an IANA time zone name"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL='loud' is not one of: DEBUG, INFO, WARNING"),
        ("FLOWSITE_MAX_BODY_BYTES", "-1", "FLOWSITE_MAX_BODY_BYTES='-1' must be 1 or more."),
        ("WEB_WORKERS", "0", "WEB_WORKERS='0' must be 1 or more."),
        ("CELERY_WORKER_CONCURRENCY", "0", "CELERY_WORKER_CONCURRENCY='0' must be 1 or more."),
        (
            "FLOWSITE_PHIXFLOW_INSTANCE",
            "a/b",
            "FLOWSITE_PHIXFLOW_INSTANCE='a/b' is not one URL path",
        ),
    ],
)
def test_a_setting_that_cannot_work_stops_a_command_with_one_line(tmp_path, variable, value, said):
    result = check_with(tmp_path, **{variable: value})

    assert result.returncode != 0
    assert result.stderr.strip().startswith(f"flowsite: {said}"), result.stderr[-2000:]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("variable", "value"), [("DB_LOCK_TIMEOUT_MS", "0"), ("PORT", "65535")])
def test_a_setting_at_its_limit_is_taken(tmp_path, variable, value):
    result = check_with(tmp_path, **{variable: value})

    assert result.returncode == 0, result.stderr[-2000:]


def test_serve_starts_workers_and_beat_at_the_log_level_set(settings):
    """LOG_LEVEL reached the web server only: workers and beat logged at INFO."""
    settings.LOG_LEVEL = "WARNING"

    commands = Command().commands()

    for name in ("worker-1", "beat"):
        argv = commands[name]
        assert argv[argv.index("--loglevel") + 1] == "WARNING", name
