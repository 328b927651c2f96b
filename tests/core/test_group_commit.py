"""Group commit (apps/core/group_commit.py): the writes of many threads in one transaction,
each caller answered only after its own writes are committed, a failing write failing
alone. Real threads and the real database (SQLite or PostgreSQL), outside a test
transaction, as the web server's request threads call it."""

import threading
import time

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from apps.core import group_commit


def _visible_elsewhere(name: str) -> bool:
    """Whether a connection of another thread sees the row (it is committed)."""
    seen = []

    def look() -> None:
        try:
            seen.append(Group.objects.filter(name=name).exists())
        finally:
            connections.close_all()

    thread = threading.Thread(target=look)
    thread.start()
    thread.join()
    return seen == [True]


def _queued(count: int) -> None:
    """Wait until `count` writes wait behind the one being committed."""
    deadline = time.monotonic() + 10
    while group_commit.waiting() < count:
        assert time.monotonic() < deadline, "the callers' writes never reached the queue"
        time.sleep(0.005)


@pytest.mark.django_db(transaction=True)
def test_writes_waiting_together_are_committed_together_and_each_caller_after_its_commit():
    started, release = threading.Event(), threading.Event()
    committed_before_return: dict[str, bool] = {}

    def first_write() -> None:
        Group.objects.create(name="first")
        started.set()
        release.wait(10)  # its caller leads, and holds the lead until the others wait

    def caller(name: str, write) -> None:
        try:
            group_commit.run(write)
            committed_before_return[name] = _visible_elsewhere(name)
        finally:
            connections.close_all()

    before = group_commit.commits()
    threads = [threading.Thread(target=caller, args=("first", first_write))]
    threads[0].start()
    assert started.wait(10)
    names = [f"caller-{n}" for n in range(15)]
    for name in names:
        thread = threading.Thread(
            target=caller, args=(name, lambda name=name: Group.objects.create(name=name))
        )
        thread.start()
        threads.append(thread)
    _queued(15)
    release.set()
    for thread in threads:
        thread.join(20)

    assert committed_before_return == {name: True for name in ["first", *names]}
    assert set(Group.objects.values_list("name", flat=True)) == {"first", *names}
    # The first write alone, then the fifteen that waited behind it in one transaction
    # (led by the first of them).
    assert group_commit.commits() - before == 2


@pytest.mark.django_db(transaction=True)
def test_a_failing_write_fails_alone_and_its_caller_is_told():
    Group.objects.create(name="taken")
    started, release = threading.Event(), threading.Event()
    outcomes: dict[str, str] = {}

    def holder() -> None:
        Group.objects.create(name="holder")
        started.set()
        release.wait(10)

    def caller(name: str, write) -> None:
        try:
            group_commit.run(write)
            outcomes[name] = "committed"
        except IntegrityError:
            outcomes[name] = "IntegrityError"
        finally:
            connections.close_all()

    writes = {
        "holder": holder,
        "before": lambda: Group.objects.create(name="before"),
        "duplicate": lambda: Group.objects.create(name="taken"),
        "after": lambda: Group.objects.create(name="after"),
    }
    threads = [threading.Thread(target=caller, args=("holder", writes.pop("holder")))]
    threads[0].start()
    assert started.wait(10)
    for name, write in writes.items():  # queued in this order behind the holder
        thread = threading.Thread(target=caller, args=(name, write))
        thread.start()
        threads.append(thread)
        _queued(len(threads) - 1)
    release.set()
    for thread in threads:
        thread.join(20)

    assert outcomes == {
        "holder": "committed",
        "before": "committed",
        "duplicate": "IntegrityError",
        "after": "committed",
    }
    assert set(Group.objects.values_list("name", flat=True)) == {
        "taken",
        "holder",
        "before",
        "after",
    }


@pytest.mark.django_db(transaction=True)
def test_a_lone_caller_writes_on_its_own_connection_and_a_failure_is_raised_to_it():
    Group.objects.create(name="taken")
    with CaptureQueriesContext(connection) as queries:
        group_commit.run(lambda: Group.objects.create(name="alone"))
    assert any('INSERT INTO "auth_group"' in query["sql"] for query in queries.captured_queries)
    with pytest.raises(IntegrityError):
        group_commit.run(lambda: Group.objects.create(name="taken"))
    group_commit.run(lambda: Group.objects.create(name="next"))
    assert set(Group.objects.values_list("name", flat=True)) == {"taken", "alone", "next"}


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_the_writes_are_part_of_it():
    before = group_commit.commits()
    with transaction.atomic():
        group_commit.run(lambda: Group.objects.create(name="inline"))
        assert Group.objects.filter(name="inline").exists()  # this thread's transaction
        transaction.set_rollback(True)
    assert not Group.objects.filter(name="inline").exists()
    assert group_commit.commits() == before
