"""Incremental sync through Query(): a caller paging with `since` while another process
creates and updates records sees every change exactly once, in order."""

import subprocess
import sys
import textwrap
import time

import pytest
import requests

from apps.accounts.services import create_api_key
from apps.records.models import Record
from apps.records.services import create_record
from tests.conftest import live_database_url, subprocess_env

WRITES = 60

WRITER = textwrap.dedent(
    """
    import random, time
    import django
    django.setup()
    from apps.records.models import Record, RecordType
    from apps.records.services import create_record, update_record

    lead = RecordType.objects.get(pk={record_type})
    rng = random.Random(7)
    for index in range({writes}):
        if index % 5 == 4:  # an update is a new submission too
            record = Record.objects.filter(record_type=lead).order_by("?").first()
            update_record(record=record, data={{"Company": f"changed {{index}}"}})
        else:
            create_record(record_type=lead, data={{"Company": f"new {{index}}"}})
        time.sleep(rng.random() / 100)
    """
)


@pytest.mark.django_db(transaction=True)
def test_paging_with_since_while_another_process_writes_misses_and_repeats_nothing(
    live_server, lead, all_leads, restuser, surface_on
):
    for index in range(5):
        create_record(record_type=lead, data={"Company": f"old {index}"})
    url = f"{live_server.url}/api/rest/query/Lead%20Registration/All%20Leads"
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {create_api_key(owner=restuser).plaintext}"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER.format(record_type=lead.pk, writes=WRITES)],
        env=subprocess_env(
            DATABASE_URL=live_database_url(), DJANGO_SETTINGS_MODULE="flowsite.settings"
        ),
    )
    seen: list[int] = []  # SubmissionIds, in the order the caller received them
    records: set[int] = set()
    since = 0
    try:
        while True:
            finished = writer.poll() is not None
            answer = session.get(url, params={"since": since, "limit": 7}, timeout=10)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            seen.extend(record["SubmissionId"] for record in page)
            records.update(record["RecordID"] for record in page)
            since = int(answer.headers.get("X-Last-Submission-Id", since))
            if finished and not page:
                break
            time.sleep(0.01)
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0
    assert seen == sorted(seen)
    assert len(seen) == len(set(seen))  # nothing twice
    # The caller holds every record in its latest state: each record's current
    # SubmissionId was received (an earlier one may be skipped when it was already
    # superseded by the time the caller asked: that is the newest state winning).
    current = dict(Record.objects.filter(record_type=lead).values_list("pk", "submission_id"))
    assert set(current.values()) <= set(seen)
    assert records == set(current)
    assert len(current) == 5 + WRITES - WRITES // 5
