"""Shared fixtures: the owner / member / outsider set, API clients, real services."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from apps.accounts.models import Role, User
from apps.accounts.privileges import Privilege
from apps.accounts.services import create_api_key
from apps.core import throttling
from apps.flows.models import Application, Connection

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BASE_DIR = Path(settings.BASE_DIR)
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def require(service: str, reason: str | None) -> None:
    """Skip a test whose service is absent; with CI=true, fail it instead."""
    if reason is None:
        return
    message = f"{service} is not available: {reason}"
    if CI:
        pytest.fail(f"{message} (CI=true requires it)")
    pytest.skip(message)


# Tests of PostgreSQL's own behaviour (locks, indexes): the SQLite pass skips them, even
# with CI=true, and the PostgreSQL pass of CI runs them.
postgresql_only = pytest.mark.skipif(
    "postgresql" not in settings.DATABASES["default"]["ENGINE"],
    reason="PostgreSQL only: runs in CI's PostgreSQL pass (DATABASE_URL=postgres://…)",
)
sqlite_only = pytest.mark.skipif(
    "sqlite" not in settings.DATABASES["default"]["ENGINE"],
    reason="SQLite only: runs in CI's first pass",
)


def tcp_unreachable(url: str) -> str | None:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    except OSError as exc:
        return f"{parts.hostname}:{parts.port}: {exc}"
    return None


@pytest.fixture(scope="session", autouse=True)
def _no_stray_database_sessions(django_db_setup, django_db_blocker):
    """Tests start workers, servers and beat on the test database; the backends of the
    last ones may still be closing when the database is dropped. End them first."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness costs ~0.3 s per account; tests need no protection.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Throttle counters live in the cache (Redis in CI): no test inherits another's, nor
    # a pause after another test's cache failure.
    cache.clear()
    throttling._cache_down_until = 0.0


@pytest.fixture(autouse=True)
def _keys_not_remembered(monkeypatch):
    # A key is remembered for half a second (apps/accounts/key_cache.py): whether a test's
    # second call falls within it would depend on the machine's speed, so query counts
    # are taken with every key read. Tests of the cache, and budgets, set SECONDS.
    from apps.accounts import key_cache

    monkeypatch.setattr(key_cache.memory, "seconds", 0.0)
    key_cache.clear()


@pytest.fixture(autouse=True)
def _flows_not_remembered(monkeypatch):
    # Routes and flow specs are remembered for half a second (apps/executions/route_cache.py,
    # apps/flows/spec_cache.py): off, as keys are, so every test sees its own changes at
    # once and query counts are exact. Tests of the caches, and budgets, set SECONDS.
    from apps.executions import route_cache
    from apps.flows import spec_cache

    monkeypatch.setattr(route_cache.memory, "seconds", 0.0)
    monkeypatch.setattr(spec_cache.memory, "seconds", 0.0)
    route_cache.clear()
    spec_cache.clear()


@pytest.fixture(autouse=True)
def _surface_lookups_not_remembered(monkeypatch):
    # The surface's switches and views are remembered for half a second
    # (apps/surface/lookup_cache.py): off, as keys and routes are.
    from apps.surface import lookup_cache

    monkeypatch.setattr(lookup_cache.memory, "seconds", 0.0)
    lookup_cache.clear()


@pytest.fixture
def redis_url() -> str:
    require("Redis", tcp_unreachable(TEST_REDIS_URL))
    return TEST_REDIS_URL


def grant(role: Role, *privileges: Privilege) -> None:
    from django.contrib.auth.models import Permission

    role.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="accounts", codename__in=[p.value for p in privileges]
        )
    )


@pytest.fixture
def callers_role(db) -> Role:
    role = Role.objects.create(name="Callers")
    grant(role, Privilege.USE_API_KEY, Privilege.RUN_FLOWS)
    return role


@pytest.fixture
def owner(db) -> User:
    """A superuser: holds every privilege without a role."""
    return User.objects.create_superuser("owner", password="owner-pass-123")


@pytest.fixture
def member(db, callers_role) -> User:
    """A regular account holding use_api_key and run_flows through its role."""
    user = User.objects.create_user("member", password="member-pass-123", is_staff=True)
    callers_role.members.add(user)
    return user


@pytest.fixture
def outsider(db) -> User:
    """A regular account with no role and no privilege."""
    return User.objects.create_user("outsider", password="outsider-pass-123", is_staff=True)


@pytest.fixture
def integration(db, callers_role) -> User:
    user = User.objects.create_user(
        "erp-sync",
        password="integration-pass-123",
        account_type=User.AccountType.INTEGRATION,
    )
    callers_role.members.add(user)
    return user


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def key_client():
    """An APIClient that sends a fresh API key of `user` as a bearer token."""

    def make(user: User, **key_options) -> APIClient:
        client = APIClient()
        client.credentials(
            HTTP_AUTHORIZATION=f"Bearer {create_api_key(owner=user, **key_options).plaintext}"
        )
        return client

    return make


@pytest.fixture
def manager(key_client, member, callers_role) -> APIClient:
    """A key of an account holding manage_flows, run_flows and view_executions."""
    grant(callers_role, Privilege.MANAGE_FLOWS, Privilege.VIEW_EXECUTIONS)
    return key_client(member)


@pytest.fixture
def reader(key_client, member, callers_role) -> APIClient:
    """A key of an account that may read (view_executions) but not manage flows."""
    grant(callers_role, Privilege.VIEW_EXECUTIONS)
    return key_client(member)


@pytest.fixture
def bystander(key_client, member) -> APIClient:
    """A key of an account with neither manage_flows nor view_executions."""
    return key_client(member)


@pytest.fixture
def application(db) -> Application:
    return Application.objects.create(name="Usage Stats")


@pytest.fixture
def local_api(db, httpserver) -> Connection:
    """A connection to the local test server, allowed through the SSRF guard by name."""
    return Connection.objects.create(
        name="Local API",
        base_uri=httpserver.url_for("/").rstrip("/"),
        allowed_private_hosts=["localhost", "127.0.0.1"],
    )


def live_database_url() -> str:
    """A DATABASE_URL for the test database, for subprocesses started by a test."""
    from django.db import connection

    params = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{params['NAME']}"
    user = params["USER"] or ""
    password = f":{params['PASSWORD']}" if params["PASSWORD"] else ""
    host = params["HOST"] or "127.0.0.1"
    port = f":{params['PORT']}" if params["PORT"] else ""
    return f"postgres://{user}{password}@{host}{port}/{params['NAME']}"


def subprocess_env(**overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(overrides)
    return env


@pytest.fixture
def embedded_broker(tmp_path, monkeypatch):
    """A filesystem broker folder of its own, shared by the test and the workers it starts:
    returns (a Celery client app, the environment for the workers)."""
    from celery import Celery

    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)  # Celery lets it override code
    var_dir = tmp_path / "var"
    (var_dir / "broker").mkdir(parents=True)
    client = Celery(broker="filesystem://")
    client.conf.broker_transport_options = {
        "data_folder_in": str(var_dir / "broker"),
        "data_folder_out": str(var_dir / "broker"),
    }
    env = {
        "FLOWSITE_VAR_DIR": str(var_dir),
        "CELERY_BROKER_URL": "filesystem://",
        "CELERY_RESULT_BACKEND": "",
        "DATABASE_URL": live_database_url(),
    }
    return client, env


class CeleryWorker:
    """A real `celery worker` process (solo pool), stopped with the test."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "flowsite",
                "worker",
                "--pool",
                "solo",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
                "--hostname",
                f"test-{os.getpid()}@%h",
            ],
            cwd=BASE_DIR,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture
def start_worker(tmp_path):
    """Start real workers with the given environment overrides; all stop after the test."""
    workers: list[CeleryWorker] = []

    def start(**env: str) -> CeleryWorker:
        worker = CeleryWorker(subprocess_env(**env), tmp_path / f"worker-{len(workers)}.log")
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(predicate, *, timeout: float, interval: float = 0.05, message: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s: {message}")


def pytest_report_header(config):
    database = settings.DATABASES["default"]
    return (
        f"flowsite: database {database['ENGINE'].rsplit('.', 1)[-1]} "
        f"({database.get('HOST') or database['NAME']}), broker {settings.CELERY_BROKER_URL}, "
        f"cache {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}, CI={CI}"
    )


def pytest_sessionfinish(session, exitstatus):
    # The test database file is dropped by pytest-django; SQLite's -wal/-shm files are not.
    for leftover in Path(settings.VAR_DIR).glob(f"test-{os.getpid()}.sqlite3*"):
        leftover.unlink(missing_ok=True)
