"""Execute() with a slow operation flow does not hold up other writers of the record type:
the record gets its submission id after the flow, as the transaction's last write
(records.services.stamp). A reader polling `?since=` meanwhile misses no row and reads none
twice. PostgreSQL only: SQLite lets one writer in at a time anyway."""

import threading
import time

import pytest
from django.db import connections

from apps.records.models import Record
from apps.records.selectors import query_records
from apps.surface import services
from tests.conftest import postgresql_only
from tests.surface.conftest import operation, script_flow

SLOW_MS = 800  # under the sandbox's CPU-time limit (1 s)
SLOW = (
    f"function main(ctx) {{ var start = Date.now(); while (Date.now() - start < {SLOW_MS}) {{}} "
    "return ctx.records; }"
)


def in_thread(work, errors):
    def run():
        try:
            work()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    return threading.Thread(target=run)


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_fast_create_does_not_wait_for_a_slow_operation_flow_and_since_misses_nothing(
    leads_app, lead, restuser
):
    slow_operation = operation(
        leads_app, lead, "Register slowly", "create", flow=script_flow(leads_app, "Slow", SLOW)
    )
    fast_operation = operation(leads_app, lead, "Register", "create")
    errors: list[BaseException] = []
    slow_started, slow_done, fast_done = threading.Event(), threading.Event(), threading.Event()
    answers = {}

    def slow():
        slow_started.set()
        try:
            answers["slow"] = services.execute_operation(
                operation=slow_operation, user=restuser, record_id=None, data={"Company": "Slow"}
            )
        finally:
            slow_done.set()

    def fast():
        slow_started.wait(5)
        time.sleep(0.2)  # the slow one is inside its flow by now
        try:
            for index in range(3):
                answers[f"fast{index}"] = services.execute_operation(
                    operation=fast_operation,
                    user=restuser,
                    record_id=None,
                    data={"Company": f"Fast {index}"},
                )
            answers["fast done while the slow flow ran"] = not slow_done.is_set()
        finally:
            fast_done.set()

    seen: list[tuple[int, int]] = []

    def read():
        since = 0
        while True:
            finished = slow_done.is_set() and fast_done.is_set()
            page = query_records(lead, since=since, limit=3)
            seen.extend((d["SubmissionId"], d["RecordID"]) for d in page.documents)
            since = page.last_submission_id or since
            if finished and not page.documents:
                return
            time.sleep(0.005)

    threads = [in_thread(work, errors) for work in (slow, fast, read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors

    # Not queued behind the slow flow: all three creates committed while it was running.
    assert answers["fast done while the slow flow ran"]
    fast_ids = [answers[f"fast{index}"].body["SubmissionId"] for index in range(3)]
    slow_answer = answers["slow"].body
    assert fast_ids == [1, 2, 3]
    assert slow_answer["SubmissionId"] == 4  # stamped last, after its flow
    assert slow_answer["processId"]
    # The reader saw every row exactly once, in submission order, none skipped.
    assert [submission_id for submission_id, _ in seen] == [1, 2, 3, 4]
    assert {record_id for _, record_id in seen} == set(Record.objects.values_list("pk", flat=True))


@pytest.mark.django_db
def test_the_operation_flow_sees_the_record_and_the_answer_has_its_final_id(
    leads_app, lead, restuser, echo_flow
):
    flowing = operation(leads_app, lead, "Register with flow", "create", flow=echo_flow)
    answer = services.execute_operation(
        operation=flowing, user=restuser, record_id=None, data={"Company": "Acme"}
    )
    record = Record.objects.get(pk=answer.body["RecordID"])
    assert answer.body["SubmissionId"] == record.submission_id == 1
    assert answer.body["Company"] == "Acme"
