"""apps/core/sqlite_backend: a process's SQLite writers queue on a lock (not SQLite's
sleeping busy handler), and still give up after the database's timeout."""

import sqlite3
import threading
import time

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


def other_process_holds_the_write_lock(seconds: float) -> threading.Thread:
    """A connection outside Django's (as another process's would be) holds SQLite's write
    lock for `seconds`; returns once it holds it."""
    holding = threading.Event()

    def hold():
        other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            holding.set()
            time.sleep(seconds)
            other.execute("COMMIT")
        finally:
            other.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert holding.wait(10)
    return thread


def test_a_writer_waits_for_another_processs_transaction_and_then_gets_in():
    # SQLite's own busy handler is off while BEGIN is retried (it sleeps in steps of up to
    # 100 ms): the writer retries BEGIN itself and gets in once the lock is free.
    holder = other_process_holds_the_write_lock(0.3)
    write_in_a_transaction("After the other process")
    holder.join(10)
    assert list(Application.objects.values_list("name", flat=True)) == ["After the other process"]
    # The busy timeout is back for the statements of the transactions that follow.
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] == int(connection.settings_dict["OPTIONS"]["timeout"] * 1000)


def test_a_writer_gives_up_on_another_processs_lock_after_the_timeout(monkeypatch):
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0.3)
    holder = other_process_holds_the_write_lock(1.0)
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            write_in_a_transaction("Too late")
    finally:
        holder.join(10)
    assert not Application.objects.exists()
