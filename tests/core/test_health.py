import pytest


def test_healthz_answers_without_touching_the_database(client):
    # No `db` fixture: pytest-django makes any database access here an error.
    response = client.get("/healthz")
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_checks_the_database_and_the_broker(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.django_db
def test_readyz_is_503_when_the_broker_is_unreachable(client, monkeypatch):
    from flowsite.celery import app

    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)  # it overrides conf in Celery
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"] != "ok"
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
