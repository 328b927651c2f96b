"""A task round-trips through a real `celery worker` process, on each broker."""

import pytest
import redis
from celery import Celery

from tests.conftest import live_database_url

pytestmark = pytest.mark.services


@pytest.fixture(autouse=True)
def _client_broker_from_code(monkeypatch):
    # Celery lets these variables override a broker or backend given in code (CI sets
    # them); the test's client app must use the broker its worker was started with.
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.delenv("CELERY_RESULT_BACKEND", raising=False)


def round_trip(client: Celery, worker, payload: str) -> dict:
    result = client.send_task("flowsite.ping", args=[payload])
    try:
        return result.get(timeout=30)
    except Exception:
        pytest.fail(f"no reply from the worker; its log:\n{worker.log()}")


def test_a_task_round_trips_through_a_worker_on_the_embedded_filesystem_broker(
    start_worker, tmp_path, db
):
    var_dir = tmp_path / "var"
    worker = start_worker(
        FLOWSITE_VAR_DIR=str(var_dir),
        CELERY_BROKER_URL="filesystem://",
        CELERY_RESULT_BACKEND="",
        DATABASE_URL=live_database_url(),
    )
    client = Celery(broker="filesystem://", backend=f"file://{var_dir / 'results'}")
    client.conf.broker_transport_options = {
        "data_folder_in": str(var_dir / "broker"),
        "data_folder_out": str(var_dir / "broker"),
        "polling_interval": 0.05,
    }
    (var_dir / "broker").mkdir(parents=True, exist_ok=True)
    (var_dir / "results").mkdir(parents=True, exist_ok=True)
    reply = round_trip(client, worker, "over files")
    assert reply["pong"] == "over files"
    assert reply["pid"] == worker.process.pid  # solo pool: the worker process itself
    assert "flowsite.ping" in worker.log()


def test_a_task_round_trips_through_a_worker_on_redis(start_worker, redis_url, db):
    redis.Redis.from_url(redis_url).flushdb()
    worker = start_worker(
        CELERY_BROKER_URL=redis_url,
        CELERY_RESULT_BACKEND=redis_url,
        DATABASE_URL=live_database_url(),
    )
    client = Celery(broker=redis_url, backend=redis_url)
    reply = round_trip(client, worker, "over redis")
    assert reply == {"pong": "over redis", "pid": worker.process.pid}
