"""apps/core/rows: insert writes the row the ORM's save writes, in one statement; by_pk reads
the instance the ORM's get reads."""

from datetime import UTC, datetime

import pytest
from django.forms.models import model_to_dict

from apps.core import rows
from apps.executions.models import Execution, StepRun
from apps.flows.models import Flow

pytestmark = pytest.mark.django_db


def run(flow, **values) -> Execution:
    return Execution(
        flow=flow,
        flow_name=str(flow),
        trigger="api",
        mode="sync",
        status="succeeded",
        input={"name": "Ada ☃", "nested": [1, None, {"a": True}]},
        response={"statusCode": 200, "body": "Hello"},
        **values,
    )


def stored(instance) -> dict:
    reread = type(instance).objects.get(pk=instance.pk)
    return {**model_to_dict(reread), "created_at": reread.created_at}


def test_insert_writes_what_save_writes_in_one_statement(application, django_assert_num_queries):
    flow = Flow.objects.create(application=application, name="Greeting")
    by_orm, by_rows = run(flow), run(flow)
    by_orm.save(force_insert=True)
    with django_assert_num_queries(1):
        rows.insert([by_rows])

    orm, mine = stored(by_orm), stored(by_rows)
    assert not by_rows._state.adding
    assert {k: v for k, v in mine.items() if k not in ("id", "created_at")} == {
        k: v for k, v in orm.items() if k not in ("id", "created_at")
    }
    assert mine["created_at"] == by_rows.created_at  # stamped, as auto_now_add does


def test_insert_keeps_a_created_at_that_is_set_and_writes_many_rows_at_once(
    application, django_assert_num_queries
):
    flow = Flow.objects.create(application=application, name="Greeting")
    started = datetime(2024, 5, 1, 9, 30, 0, 123000, tzinfo=UTC)
    execution = run(flow, created_at=started)
    rows.insert([execution])
    assert Execution.objects.get(pk=execution.pk).created_at == started

    steps = [
        StepRun(execution=execution, position=index, path=f"pageProcessors[{index}]", kind="script")
        for index in range(3)
    ]
    with django_assert_num_queries(1):
        rows.insert(steps)
    assert list(execution.steps.order_by("position").values_list("path", flat=True)) == [
        "pageProcessors[0]",
        "pageProcessors[1]",
        "pageProcessors[2]",
    ]


def fields_of(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.fields}


def test_by_pk_reads_what_get_reads_in_one_statement(application, django_assert_num_queries):
    flow = Flow.objects.create(
        application=application, name="Greeting", disabled=True, api={"path": "/hi"}
    )
    execution = run(
        flow,
        started_at=datetime(2024, 5, 1, 9, 30, 0, 123000, tzinfo=UTC),
        caller_ip="192.0.2.7",
    )
    execution.save(force_insert=True)

    for model, pk in ((Execution, execution.pk), (Execution, str(execution.pk)), (Flow, flow.pk)):
        by_orm = model.objects.get(pk=pk)
        with django_assert_num_queries(1):
            mine = rows.by_pk(model, pk)
        assert type(mine) is model
        assert fields_of(mine) == fields_of(by_orm)
        # Converted as the ORM converts (on SQLite: datetimes, UUIDs, booleans, JSON).
        assert {name: type(value) for name, value in fields_of(mine).items()} == {
            name: type(value) for name, value in fields_of(by_orm).items()
        }
        assert not mine._state.adding
        assert mine._state.db == by_orm._state.db


def test_by_pk_of_a_missing_row_is_none(application):
    assert rows.by_pk(Flow, 987_654) is None
    assert rows.by_pk(Execution, "6f1f5e0f-9d11-4f39-9a57-3f2c8a9e8d4b") is None


def test_update_writes_what_the_orm_update_writes_where_the_row_still_matches(
    application, django_assert_num_queries
):
    flow = Flow.objects.create(application=application, name="Greeting")
    by_orm, by_rows = run(flow), run(flow)
    rows.insert([by_orm, by_rows])
    Execution.objects.update(status="running")
    values = {
        "status": "failed",
        "response": {"statusCode": 500, "body": ["é", None]},
        "finished_at": datetime(2024, 5, 1, 9, 30, 0, 123000, tzinfo=UTC),
        "num_error": 3,
        "cancel_requested": True,
    }

    Execution.objects.filter(pk=by_orm.pk, status="running").update(**values)
    with django_assert_num_queries(1):
        assert rows.update(Execution, by_rows.pk, values, status="running") == 1
    with django_assert_num_queries(1):
        assert rows.update(Execution, by_rows.pk, {"status": "queued"}, status="running") == 0

    orm, mine = stored(by_orm), stored(by_rows)
    assert mine["status"] == "failed"
    assert {k: v for k, v in mine.items() if k not in ("id", "created_at")} == {
        k: v for k, v in orm.items() if k not in ("id", "created_at")
    }


def test_update_refuses_to_compare_with_none(application):
    with pytest.raises(ValueError, match="None never matches"):
        rows.update(Flow, 1, {"disabled": True}, description=None)


def test_update_takes_a_foreign_key_by_its_attname_and_none_as_a_value(application):
    flow = Flow.objects.create(application=application, name="Greeting")
    execution = run(flow)
    rows.insert([execution])

    assert rows.update(Execution, execution.pk, {"flow_id": None}, status="succeeded") == 1

    assert Execution.objects.get(pk=execution.pk).flow_id is None
