"""Reads for the admin's home page: what ran lately, what failed, what is slow, what waits,
and whether the worker and beat are alive. A fixed number of queries, however many runs
there are (each count is one aggregate; lists are limited)."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Max, Min
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from apps.core.startup import check_broker
from apps.core.workers import ALIVE_SECONDS, worker_present
from apps.executions.models import Execution
from apps.flows.models import Flow

Status = Execution.Status
FAILED = (Status.FAILED, Status.TIMED_OUT, Status.COMPLETED_WITH_ERRORS)
STATUS_ORDER = [status for status, _ in Status.choices]
BEAT_TASK = "recover-stale-executions"  # the beat sends it every 30 s
BEAT_ALIVE_SECONDS = 120
LISTED = 10


@dataclass(frozen=True)
class Health:
    name: str
    ok: bool
    text: str


@dataclass
class Home:
    last_day: dict[str, int]
    last_week: dict[str, int]
    days: list[tuple[datetime, dict[str, int]]]  # the last 7 days, oldest first
    failures: list[Execution]
    slowest: list[dict]
    queued: int
    oldest_queued: datetime | None
    running: int
    health: list[Health]
    apis: list[Flow] = field(default_factory=list)

    @property
    def busiest_day(self) -> int:
        return max((sum(counts.values()) for _, counts in self.days), default=0) or 1


def _by_status(since: datetime) -> dict[str, int]:
    rows = (
        Execution.objects.filter(created_at__gte=since)
        .values("status")
        .annotate(count=Count("pk"))
        .order_by()
    )
    counts = {row["status"]: row["count"] for row in rows}
    return {status: counts.get(status, 0) for status in STATUS_ORDER}


def _days(now: datetime) -> list[tuple[datetime, dict[str, int]]]:
    today = timezone.localdate(now)
    first = today - timedelta(days=6)
    start = timezone.make_aware(datetime.combine(first, datetime.min.time()))
    rows = (
        Execution.objects.filter(created_at__gte=start)
        .annotate(day=TruncDate("created_at"))
        .values("day", "status")
        .annotate(count=Count("pk"))
        .order_by()
    )
    days = {first + timedelta(days=offset): dict.fromkeys(STATUS_ORDER, 0) for offset in range(7)}
    for row in rows:
        if row["day"] in days:
            days[row["day"]][row["status"]] += row["count"]
    return sorted(days.items())


def _slowest(since: datetime) -> list[dict]:
    took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    return list(
        Execution.objects.filter(
            created_at__gte=since, started_at__isnull=False, finished_at__isnull=False
        )
        .exclude(flow=None)
        .values("flow_id", "flow_name")
        .annotate(average=Avg(took), longest=Max(took), runs=Count("pk"))
        .order_by("-average")[:5]
    )


def _health() -> list[Health]:
    broker = check_broker()
    worker = worker_present()
    beat = PeriodicTask.objects.filter(name=BEAT_TASK).values_list("last_run_at", flat=True).first()
    beat_ok = beat is not None and timezone.now() - beat < timedelta(seconds=BEAT_ALIVE_SECONDS)
    return [
        Health("Broker", broker is None, "answers" if broker is None else "unavailable"),
        Health(
            "Worker",
            worker,
            "alive" if worker else f"none has beaten in the last {ALIVE_SECONDS} s",
        ),
        Health(
            "Beat",
            beat_ok,
            "alive"
            if beat_ok
            else f"its housekeeping has not run in the last {BEAT_ALIVE_SECONDS} s",
        ),
    ]


def home(now: datetime | None = None) -> Home:
    now = now or timezone.now()
    waiting = Execution.objects.filter(status=Status.QUEUED).aggregate(
        count=Count("pk"), oldest=Min("created_at")
    )
    return Home(
        last_day=_by_status(now - timedelta(days=1)),
        last_week=_by_status(now - timedelta(days=7)),
        days=_days(now),
        failures=list(
            Execution.objects.filter(status__in=FAILED)
            .only("id", "flow_name", "status", "error", "created_at")
            .order_by("-created_at")[:LISTED]
        ),
        slowest=_slowest(now - timedelta(days=7)),
        queued=waiting["count"],
        oldest_queued=waiting["oldest"],
        running=Execution.objects.filter(status=Status.RUNNING).count(),
        health=_health(),
        apis=list(
            Flow.objects.filter(api_enabled=True)
            .select_related("application")
            .order_by("application__name", "name")[:LISTED]
        ),
    )


def run_url(execution: Execution) -> str:
    return reverse("admin:executions_execution_change", args=[execution.pk])
