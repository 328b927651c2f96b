"""The admin's home page: runs of the last 24 h and 7 days by status, failures with links,
the queue and the worker's, beat's and broker's health; a fixed number of queries."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import escape

from apps.core.models import WorkerHeartbeat
from apps.executions.models import Execution
from tests.conftest import live_database_url, wait_for

pytestmark = pytest.mark.django_db
Status = Execution.Status


def runs(flow, status, count, *, days_ago=0.0, error=""):
    made = Execution.objects.bulk_create(
        Execution(
            flow=flow,
            flow_name=str(flow),
            trigger="api",
            mode="sync",
            status=status,
            error=error,
            started_at=timezone.now() - timedelta(seconds=2),
            finished_at=timezone.now(),
        )
        for _ in range(count)
    )
    when = timezone.now() - timedelta(days=days_ago)
    Execution.objects.filter(pk__in=[run.pk for run in made]).update(created_at=when)
    return made


def home(admin_client) -> str:
    response = admin_client.get("/admin/")
    assert response.status_code == 200
    return response.content.decode()


def count_of(html: str, status: str, column: str) -> int:
    row = html.split(f'class="home-status-{status}"', 1)[1].split("</tr>", 1)[0]
    return int(row.split(f'class="number home-{column}">', 1)[1].split("<", 1)[0])


def test_counts_by_status_for_the_day_and_the_week_and_failures_link_to_their_runs(
    admin_client, greeting
):
    runs(greeting, Status.SUCCEEDED, 3)
    runs(greeting, Status.SUCCEEDED, 2, days_ago=3)  # the week only
    runs(greeting, Status.SUCCEEDED, 4, days_ago=9)  # neither
    failed = runs(greeting, Status.FAILED, 1, error="Script prepareResponse at line 2: boom")
    runs(greeting, Status.COMPLETED_WITH_ERRORS, 1, days_ago=2)
    runs(greeting, Status.TIMED_OUT, 1)
    runs(greeting, Status.CANCELLED, 1, days_ago=5)
    runs(greeting, Status.QUEUED, 2)
    runs(greeting, Status.RUNNING, 1)

    html = home(admin_client)

    expected = {
        "succeeded": (3, 5),
        "failed": (1, 1),
        "completed_with_errors": (0, 1),
        "timed_out": (1, 1),
        "cancelled": (0, 1),
        "queued": (2, 2),
        "running": (1, 1),
    }
    for status, (day, week) in expected.items():
        assert (count_of(html, status, "day"), count_of(html, status, "week")) == (day, week)
    assert f'href="/admin/executions/execution/{failed[0].pk}/change/"' in html
    assert escape("Script prepareResponse at line 2: boom") in html
    assert 'id="home-queued">2' in html
    assert "<svg" in html


def test_the_worker_is_shown_red_while_none_beats_and_green_when_one_does(admin_client):
    WorkerHeartbeat.objects.all().delete()
    html = home(admin_client)
    worker = html.split('class="home-health-worker"', 1)[1].split("</tr>", 1)[0]
    assert "health-bad" in worker
    assert "none has beaten" in worker

    WorkerHeartbeat.objects.create(hostname="celery@test", seen_at=timezone.now())
    worker = home(admin_client).split('class="home-health-worker"', 1)[1].split("</tr>", 1)[0]
    assert "health-ok" in worker


def test_the_home_page_runs_the_same_queries_with_10_and_with_1000_runs(admin_client, greeting):
    def queries() -> int:
        home(admin_client)  # warm: the session and permissions
        with CaptureQueriesContext(connection) as captured:
            home(admin_client)
        return len(captured)

    runs(greeting, Status.SUCCEEDED, 9)
    runs(greeting, Status.FAILED, 1, error="boom")
    with_10 = queries()
    runs(greeting, Status.SUCCEEDED, 890)
    runs(greeting, Status.FAILED, 99, error="boom", days_ago=3)
    runs(greeting, Status.QUEUED, 1)
    assert queries() == with_10
    assert with_10 <= 16


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_is_green_while_it_runs_and_red_once_stopped(admin_client, start_worker):
    def worker_row() -> str:
        return home(admin_client).split('class="home-health-worker"', 1)[1].split("</tr>", 1)[0]

    WorkerHeartbeat.objects.all().delete()
    worker = start_worker(DATABASE_URL=live_database_url())
    wait_for(
        lambda: WorkerHeartbeat.objects.exists(),
        timeout=60,
        message=f"the worker's first heartbeat; its log:\n{worker.log()}",
    )
    assert "health-ok" in worker_row()

    worker.stop()  # a clean shutdown, as `make run`'s Ctrl-C
    assert "health-bad" in worker_row()
