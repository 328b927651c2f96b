"""apps/core/rows.insert: the same row as the ORM's save, in one statement."""

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
