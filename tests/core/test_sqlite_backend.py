"""apps/core/sqlite_backend: a process's SQLite writers queue on a lock (not SQLite's
sleeping busy handler), and still give up after the database's timeout."""

import threading

import pytest
from django.db import OperationalError, connection, connections, transaction

from apps.flows.models import Application

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite backend only"),
]


def in_threads(count, work):
    errors = []

    def run(number):
        try:
            work(number)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return errors


def test_concurrent_writers_of_one_process_all_get_in():
    def write(number):
        for index in range(10):
            with transaction.atomic():
                Application.objects.create(name=f"App {number}-{index}")

    assert in_threads(8, write) == []
    assert Application.objects.count() == 80


def test_a_failed_transaction_lets_the_next_writer_in():
    def fail():
        with transaction.atomic():
            Application.objects.create(name="Rolled back")
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fail()
    assert in_threads(1, lambda _: Application.objects.create(name="Next")) == []
    assert list(Application.objects.values_list("name", flat=True)) == ["Next"]


def write_in_a_transaction(name):
    with transaction.atomic():
        Application.objects.create(name=name)


def test_a_writer_gives_up_after_the_timeout_with_database_is_locked(monkeypatch):
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0.3)
    holding, release = threading.Event(), threading.Event()

    def hold(_):
        with transaction.atomic():
            Application.objects.create(name="Holder")
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=lambda: in_threads(1, hold))
    holder.start()
    assert holding.wait(10)
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            write_in_a_transaction("Too late")
    finally:
        release.set()
        holder.join(10)
    assert list(Application.objects.values_list("name", flat=True)) == ["Holder"]
