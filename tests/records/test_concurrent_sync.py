"""Incremental sync while records are written: a reader paging with `since` sees every
write exactly once. PostgreSQL only: SQLite runs one writer at a time anyway."""

import random
import threading
import time

import pytest
from django.db import connection, connections, transaction

from apps.flows.models import Application
from apps.records import services
from apps.records.models import Record, RecordField, RecordType
from apps.records.selectors import query_records
from tests.conftest import postgresql_only

WRITERS = 4
WRITES_PER_WRITER = 40


def in_thread(work):
    """Run `work` with a database connection of its own, closed at the end."""

    def run():
        try:
            work()
        finally:
            connections.close_all()

    return run


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_reader_paging_with_since_misses_and_repeats_nothing_while_writers_commit():
    application = Application.objects.create(name="Sync")
    record_type = RecordType.objects.create(application=application, name="Lead")
    RecordField.objects.create(record_type=record_type, name="Company", required=True)
    RecordField.objects.create(record_type=record_type, name="Writer", type="integer")
    errors: list[BaseException] = []
    superseded: list[int] = []  # submission ids an update replaced
    writing = threading.Event()
    writing.set()

    def write(number: int):
        rng = random.Random(number)  # noqa: S311 - timing jitter
        mine: list[Record] = []
        try:
            for index in range(WRITES_PER_WRITER):
                # Hold the transaction open after the write: with ids from a plain
                # sequence, a smaller id would often commit after a larger one.
                with transaction.atomic():
                    if mine and rng.random() < 0.3:
                        record = rng.choice(mine)
                        superseded.append(record.submission_id)
                        services.update_record(
                            record=record, data={"Company": f"W{number} #{index}"}
                        )
                    else:
                        mine.append(
                            services.create_record(
                                record_type=record_type,
                                data={"Company": f"W{number} #{index}", "Writer": number},
                            )
                        )
                    time.sleep(rng.random() * 0.004)
        except BaseException as exc:
            errors.append(exc)

    seen: list[tuple[int, int]] = []  # (submission id, record id), in reading order

    def read():
        since = 0
        try:
            while True:
                still_writing = writing.is_set()
                page = query_records(record_type, since=since, limit=7)
                seen.extend((d["SubmissionId"], d["RecordID"]) for d in page.documents)
                since = page.last_submission_id or since
                if not page.documents and not still_writing:
                    return  # caught up after the last write committed
                if not page.documents:
                    time.sleep(0.001)
        except BaseException as exc:
            errors.append(exc)

    writers = [threading.Thread(target=in_thread(lambda n=n: write(n))) for n in range(WRITERS)]
    reader = threading.Thread(target=in_thread(read))
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    writing.clear()
    reader.join(timeout=120)
    assert not errors, errors

    ids = [submission_id for submission_id, _ in seen]
    assert ids == sorted(ids), "the reader went back in time"
    assert len(ids) == len(set(ids)), "a write was read twice"
    # Every write got the next id, and the reader saw each one that was still a record's
    # latest: an id it did not see was replaced by an update before the reader got there
    # (a slow reader, as under CI's load, sees only the record's newer id; that is the
    # guarantee). Nothing was read past an id that had not committed yet.
    written = set(range(1, WRITERS * WRITES_PER_WRITER + 1))
    assert set(ids) <= written
    assert written - set(ids) <= set(superseded), "a write was missed"
    # Each record's latest state was read.
    final = set(Record.objects.values_list("submission_id", "pk"))
    assert final <= set(seen)


@postgresql_only
@pytest.mark.django_db
def test_record_data_has_a_gin_index_on_postgresql():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'records_record_data_gin'"
        )
        (definition,) = cursor.fetchone()
    assert "gin (data jsonb_path_ops)" in definition


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_upserts_of_one_key_create_one_record_and_never_deadlock():
    """Upserts lock their key first, then the record, then the counter (the lock order of
    every writer): eight writers upserting two keys, with updates of the same rows mixed
    in, end with one record per key and every write counted."""
    application = Application.objects.create(name="Upserts")
    record_type = RecordType.objects.create(application=application, name="Lead")
    RecordField.objects.create(record_type=record_type, name="Email", required=True)
    RecordField.objects.create(record_type=record_type, name="Count", type="integer")
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def upsert(number: int):
        start.wait(10)
        for index in range(10):
            email = f"key{(number + index) % 2}@example.com"
            with transaction.atomic():
                record, _ = services.upsert_record(
                    record_type=record_type,
                    key_field="Email",
                    data={"Email": email, "Count": index},
                )
                if index % 3 == 0:
                    services.update_record(record=record, data={"Count": -1})

    threads = [
        threading.Thread(target=in_thread(lambda n=n: _collect(errors, upsert, n)))
        for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    emails = sorted(Record.objects.values_list("data__Email", flat=True))
    assert emails == ["key0@example.com", "key1@example.com"]
    # 80 upserts and 32 updates, each with its own submission id.
    assert max(Record.objects.values_list("submission_id", flat=True)) == 80 + 8 * 4


def _collect(errors, work, *args):
    try:
        work(*args)
    except BaseException as exc:
        errors.append(exc)
