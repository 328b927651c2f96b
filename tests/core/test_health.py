from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.core.models import WorkerHeartbeat
from apps.core.workers import ALIVE_SECONDS
from tests.conftest import postgresql_only, wait_for


def test_healthz_answers_without_touching_the_database(client):
    # No `db` fixture: pytest-django makes any database access here an error.
    response = client.get("/healthz")
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_the_database_and_the_broker(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "broker": "ok", "worker": "absent"},
    }


@pytest.mark.django_db
def test_readyz_is_503_when_the_broker_is_unreachable(client, monkeypatch):
    from flowsite.celery import app

    WorkerHeartbeat.objects.create(hostname="w1@now", seen_at=timezone.now())
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)  # it overrides conf in Celery
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {"database": "ok", "broker": "unavailable", "worker": "unknown"}
    assert "broker" in body["detail"]


def test_healthz_answers_head_for_load_balancers(client):
    assert client.head("/healthz").status_code == 200


@pytest.mark.django_db
def test_readyz_does_not_tell_the_world_where_the_broker_is(client, monkeypatch):
    from flowsite.celery import app

    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setattr(app.conf, "broker_url", "redis://10.9.8.7:1/0")
    body = client.get("/readyz").json()
    assert "10.9.8.7" not in str(body)
    assert body["detail"] == "Not ready: broker unavailable."


@pytest.mark.django_db
def test_readyz_tells_whether_a_worker_is_alive_and_can_require_one(client):
    assert client.get("/readyz?worker=1").status_code == 503
    stale = timezone.now() - timedelta(seconds=ALIVE_SECONDS + 1)
    WorkerHeartbeat.objects.create(hostname="w1@old", seen_at=stale)
    refused = client.get("/readyz?worker=1")
    assert refused.status_code == 503
    assert refused.json()["checks"]["worker"] == "absent"
    assert refused.json()["detail"] == "Not ready: worker unavailable."
    WorkerHeartbeat.objects.create(hostname="w2@now", seen_at=timezone.now())
    assert client.get("/readyz?worker=1").json()["checks"]["worker"] == "present"
    assert client.get("/readyz").status_code == 200


@pytest.mark.services
def test_a_real_worker_beats_while_it_runs_and_says_goodbye(
    start_worker, embedded_broker, transactional_db
):
    _, env = embedded_broker
    worker = start_worker(**env)
    wait_for(
        lambda: WorkerHeartbeat.objects.exists(), timeout=60, message="no heartbeat from the worker"
    )
    worker.stop()
    assert not WorkerHeartbeat.objects.exists()  # a clean shutdown says so at once


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_readyz_says_not_ready_when_postgresql_is_read_only(client):
    """A replica after a failover answers SELECT 1 but takes no write."""
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    try:
        response = client.get("/readyz")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")

    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unavailable"
