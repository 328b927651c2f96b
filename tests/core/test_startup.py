"""What an operator sees when the configuration is wrong: one clear line."""

import subprocess
import sys

from tests.conftest import BASE_DIR, subprocess_env


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def environment_without(*names: str, **overrides: str) -> dict[str, str]:
    env = subprocess_env(**overrides)
    for name in names:
        env.pop(name, None)
    return env


def test_with_debug_off_and_no_secret_key_the_process_refuses_to_start(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env=environment_without("SECRET_KEY", DEBUG="0", FLOWSITE_VAR_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().startswith("flowsite: SECRET_KEY is not set. With DEBUG off")
    assert "Traceback" not in result.stderr


def test_a_short_api_key_secret_is_refused(tmp_path):
    result = run_manage(
        "check",
        DEBUG="0",
        SECRET_KEY="x" * 50,
        FLOWSITE_API_KEY_SECRET="short",
        FLOWSITE_VAR_DIR=str(tmp_path),
    )
    assert result.returncode != 0
    assert (
        "FLOWSITE_API_KEY_SECRET (from the environment) must be at least 32 bytes" in result.stderr
    )


def test_locally_generated_secrets_are_kept_in_var_and_reused(tmp_path):
    for _ in range(2):
        assert run_manage("check", FLOWSITE_VAR_DIR=str(tmp_path)).returncode == 0
    secret = (tmp_path / "secret_key").read_text()
    assert len(secret) >= 48
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "flowsite_api_key_secret").exists()


def test_an_unreachable_database_is_one_clear_line(tmp_path):
    result = run_manage(
        "migrate",
        DATABASE_URL="postgres://flowsite:pw@127.0.0.1:1/flowsite",
        FLOWSITE_VAR_DIR=str(tmp_path),
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(
        "flowsite: cannot use the database postgres://flowsite:***@127.0.0.1:1/flowsite:"
    )
    assert "pw@" not in lines[0]


def test_a_malformed_rate_limit_stops_the_process_with_a_clear_line(tmp_path):
    result = run_manage(
        "check", FLOWSITE_THROTTLE_KEY="100/minutes", FLOWSITE_VAR_DIR=str(tmp_path)
    )
    assert result.returncode != 0
    assert "FLOWSITE_THROTTLE_KEY='100/minutes' is not a rate such as 60/min" in result.stderr


def test_an_unreadable_secret_file_is_one_clear_line(tmp_path):
    (tmp_path / "secret_key").mkdir()  # reading it fails: a directory where a file should be
    result = run_manage("check", FLOWSITE_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert result.stderr.strip().startswith("flowsite: cannot read or create")
    assert "Traceback" not in result.stderr
