"""The jobs API: Celigo's GET /jobs, /jobs/<id>, /jobs/<id>/errors and POST …/cancel."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts import key_cache
from apps.accounts.models import Role
from apps.accounts.privileges import Privilege
from apps.executions import services
from apps.executions.models import Execution, ExecutionError, StepRun
from apps.flows.models import Flow
from tests.conftest import grant


@pytest.fixture
def viewer(key_client, member, callers_role) -> APIClient:
    grant(callers_role, Privilege.VIEW_EXECUTIONS)
    return key_client(member)


@pytest.fixture
def flows(application):
    return (
        Flow.objects.create(application=application, name="first"),
        Flow.objects.create(application=application, name="second"),
    )


def job(flow, minutes_ago=0, **fields) -> Execution:
    execution = services.create_execution(flow=flow, trigger="run")
    Execution.objects.filter(pk=execution.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago), **fields
    )
    execution.refresh_from_db()
    return execution


def test_jobs_are_listed_newest_first_with_filters(viewer, flows):
    first, second = flows
    old = job(first, 30, status="succeeded")
    new = job(first, 1, status="failed")
    job(second, 5, status="succeeded")
    ids = [j["_id"] for j in viewer.get(f"/api/v1/jobs?_flowId={first.pk}").json()]
    assert ids == [str(new.pk), str(old.pk)]
    assert [j["_id"] for j in viewer.get("/api/v1/jobs?status=failed").json()] == [str(new.pk)]
    since = (timezone.now() - timedelta(minutes=10)).isoformat()
    recent = viewer.get("/api/v1/jobs", {"createdAt_gte": since}).json()
    assert len(recent) == 2


@pytest.mark.parametrize(
    ("celigo", "status"), [("completed", "succeeded"), ("canceled", "cancelled")]
)
def test_celigo_s_completed_and_canceled_filter_as_succeeded_and_cancelled(
    viewer, flows, celigo, status
):
    wanted = job(flows[0], 2, status=status)
    job(flows[0], 1, status="failed")
    job(flows[1], 3, status="completed_with_errors")
    for name in (celigo, status):
        answer = viewer.get(f"/api/v1/jobs?status={name}")
        assert answer.status_code == 200, answer.content
        assert [j["_id"] for j in answer.json()] == [str(wanted.pk)]
        assert answer.json()[0]["status"] == status  # shown under Flowsite's name


def test_the_next_page_is_in_the_link_header_and_stays_correct_while_jobs_arrive(viewer, flows):
    for minutes in range(5):
        job(flows[0], minutes)
    first_page = viewer.get("/api/v1/jobs?limit=2")
    assert len(first_page.json()) == 2
    next_url = first_page["Link"].split(";")[0].strip("<>")
    job(flows[0], 0)  # a new job arrives between the pages
    second_page = viewer.get(next_url).json()
    seen = [j["_id"] for j in first_page.json()] + [j["_id"] for j in second_page]
    assert len(set(seen)) == 4  # no job twice, none skipped


def test_listing_costs_the_same_queries_whatever_the_number_of_jobs(
    viewer, flows, django_assert_num_queries, monkeypatch
):
    monkeypatch.setattr(key_cache.memory, "seconds", 60.0)  # however slow the machine
    for minutes in range(3):
        job(flows[0], minutes)
    viewer.get("/api/v1/jobs")  # warm: the key's last-used write; the key is remembered
    with django_assert_num_queries(1):  # the page
        assert len(viewer.get("/api/v1/jobs").json()) == 3
    for minutes in range(20):
        job(flows[1], minutes)
    with django_assert_num_queries(1):
        assert len(viewer.get("/api/v1/jobs").json()) == 23


def test_a_job_shows_its_counts_and_steps_and_its_errors(viewer, flows):
    execution = job(flows[0], status="succeeded", num_success=2, num_error=1)
    StepRun.objects.create(
        execution=execution,
        position=0,
        path="pageProcessors[0]",
        kind="import",
        name="Post",
        records_in=3,
        records_out=2,
        errors=1,
    )
    ExecutionError.objects.create(
        execution=execution,
        step_path="pageProcessors[0]",
        step_name="Post",
        message="409",
        http_status=409,
        record={"id": 2},
    )
    body = viewer.get(f"/api/v1/jobs/{execution.pk}").json()
    assert (body["numSuccess"], body["numError"], body["status"]) == (2, 1, "succeeded")
    assert body["steps"][0]["step"] == "pageProcessors[0]"
    [error] = viewer.get(f"/api/v1/jobs/{execution.pk}/errors").json()
    assert (error["httpStatus"], error["record"]) == (409, {"id": 2})


def test_cancel_stops_a_queued_job_and_refuses_a_finished_one(viewer, flows, callers_role):
    queued = job(flows[0])
    response = viewer.post(f"/api/v1/jobs/{queued.pk}/cancel")
    assert (response.status_code, response.json()["status"]) == (200, "cancelled")
    finished = viewer.post(f"/api/v1/jobs/{queued.pk}/cancel")
    assert finished.status_code == 409
    assert "finished already" in finished.json()["detail"]


def test_reading_jobs_needs_view_executions(key_client, member, flows):
    response = key_client(member).get("/api/v1/jobs")
    assert (response.status_code, response.json()["privilege"]) == (403, "view_executions")


def test_cancel_needs_run_flows_too(key_client, outsider, flows):
    role = Role.objects.create(name="watchers")
    grant(role, Privilege.USE_API_KEY, Privilege.VIEW_EXECUTIONS)
    role.members.add(outsider)
    response = key_client(outsider).post(f"/api/v1/jobs/{job(flows[0]).pk}/cancel")
    assert (response.status_code, response.json()["privilege"]) == (403, "run_flows")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=done", "#/status"),
        ("_flowId=x", "#/_flowId"),
        ("createdAt_gte=yesterday", "#/createdAt_gte"),
        ("colour=red", "#/colour"),
    ],
)
def test_bad_filters_are_400_naming_them(viewer, flows, query, field):
    response = viewer.get(f"/api/v1/jobs?{query}")
    assert response.status_code == 400
    assert field in [error["pointer"] for error in response.json()["errors"]]


def test_an_unknown_job_is_404(viewer, db):
    assert viewer.get("/api/v1/jobs/3f2c8a9e-8d4b-4f39-9a57-6f1f5e0f9d11").status_code == 404
    assert viewer.get("/api/v1/jobs/not-a-uuid").status_code == 404


@pytest.mark.parametrize(
    ("moment", "status"),
    [
        ("1900-01-08T07:23:54+23:38", 200),  # PostgreSQL refuses such an offset: UTC is sent
        ("0001-01-01T00:00:00+23:00", 400),  # before the first storable moment in UTC
    ],
)
def test_created_at_filters_compare_in_utc(reader, moment, status):
    answer = reader.get("/api/v1/jobs", {"createdAt_lte": moment})
    assert answer.status_code == status, answer.json()
