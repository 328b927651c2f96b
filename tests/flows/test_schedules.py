"""Flow schedules: cron / Quartz parsing, beat's PeriodicTask, DST-correct next runs, the
overlap policy, and a real worker running what beat would send."""

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from django.utils.html import escape
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry
from django_celery_beat.tzcrontab import TzAwareCrontab

from apps.executions import launch, queue, services
from apps.executions.home import BEAT_TASK
from apps.executions.models import Execution
from apps.executions.tasks import run_scheduled_flow
from apps.flows.beat import FlowScheduler
from apps.flows.models import Flow
from apps.flows.schedules import (
    CronFields,
    delete_flow_schedule,
    describe_schedule,
    next_run_at,
    next_runs,
    parse_schedule,
    sync_flow_schedule,
    validate_timezone,
)
from flowsite.celery import app as celery_app
from tests.conftest import wait_for

Status = Execution.Status
SCHEDULE = Execution.Trigger.SCHEDULE


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def in_utc(instants: list[datetime]) -> list[datetime]:
    # Aware datetimes in a repeated (fall-back) hour never compare equal across zones
    # (PEP 495), and ones sharing a tzinfo compare by wall time: compare instants in UTC.
    return [instant.astimezone(UTC) for instant in instants]


# --- parse_schedule -------------------------------------------------------------------


def test_a_new_flow_is_scheduled_in_the_servers_time_zone_until_one_is_picked(settings, db):
    """README: TIME_ZONE is the schedules' default; a flow saved without one ran in UTC
    (an outside probe)."""
    settings.TIME_ZONE = "Europe/Berlin"
    assert Flow().timezone == "Europe/Berlin"
    assert validate_timezone("") == "Europe/Berlin"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # 5-field cron
        ("*/15 2 * * 1-5", "*/15 2 * * 1-5"),
        ("0 9 * * *", "0 9 * * *"),
        ("5/15 * * * *", "5-59/15 * * * *"),
        ("0 9 * * 7", "0 9 * * 0"),  # cron's 7 is Sunday too
        ("0 9 * * 5-7", "0 9 * * 0,5,6"),
        ("0 9 * * mon,wed", "0 9 * * 1,3"),
        ("0 9 * jan-mar *", "0 9 * 1-3 *"),
        ("0 9 * * fri-mon", "0 9 * * 0,1,5,6"),  # a range over the weekend
        ("0 0 1,15 * ?", "0 0 1,15 * *"),
        # Quartz, 6 and 7 fields, as in the reference documents
        ("? 0 2 ? * *", "0 2 * * *"),
        ("0 0 2 ? * MON-FRI", "0 2 * * 1-5"),
        ("0 30 9 ? * 2-6 *", "30 9 * * 1-5"),
        ("0 30 9 ? * 2-6", "30 9 * * 1-5"),
        ("* 0/10 * * * ?", "0-59/10 * * * *"),
        ("00 0 12 ? JUL,DEC SAT-SUN", "0 12 * 7,12 0,6"),
        ("0 0 12 ? * 1,7", "0 12 * * 0,6"),  # Quartz 1 = SUN, 7 = SAT
        ("0 0 12 ? * 1", "0 12 * * 0"),
        ("0 0 12 ? * 7", "0 12 * * 6"),
        ("0 0 12 ? * 2/2", "0 12 * * 1-6/2"),  # from MON, every other day
        ("0 0 12 ? * */2", "0 12 * * 0-6/2"),
        ("0 0 12 ? * 6-2", "0 12 * * 0,1,5,6"),  # FRI-MON
        ("0 15 10 15 * ?", "15 10 15 * *"),
        ("0 0 0 1 1 ? *", "0 0 1 1 *"),
    ],
)
def test_parse_schedule_turns_cron_and_quartz_into_crontab_fields(expression, expected):
    fields = parse_schedule(expression)
    assert str(fields) == expected
    fields.to_crontab()  # celery accepts it as it is stored


def test_the_seed_schedule_runs_every_day_at_two():
    assert parse_schedule("? 0 2 ? * *") == CronFields(
        minute="0", hour="2", day_of_month="*", month_of_year="*", day_of_week="*"
    )


def test_quartz_weekday_numbers_and_names_mean_the_same_days():
    by_number = parse_schedule("0 30 9 ? * 2-6 *").to_crontab()
    by_name = parse_schedule("0 30 9 ? * MON-FRI").to_crontab()
    assert by_number.day_of_week == by_name.day_of_week == {1, 2, 3, 4, 5}


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("30 0 2 * * ?", "Flowsite schedules have minute resolution: the seconds field must be 0"),
        ("*/5 * * * * ?", "the seconds field must be 0"),
        ("0 0 2 ? * * 2027", "year restrictions are not supported"),
        ("0 0 2 ? * * 2026-2030", "year restrictions are not supported"),
        ("0 0 0 L * ?", "'L'"),
        ("0 0 0 ? * 6L", "'L'"),
        ("0 0 0 15W * ?", "'W'"),
        ("0 0 0 LW * ?", "'LW'"),
        ("0 0 0 ? * 6#3", "'#'"),
        ("61 * * * *", "61 is out of range for the minute field (0-59)"),
        ("0 24 * * *", "24 is out of range for the hour field"),
        ("0 0 0 ? * 0", "Quartz: 1 = SUN"),
        ("0 0 0 ? 13 *", "13 is out of range for the month field"),
        ("0 0 30 2 *", "never occurs"),
        ("*/0 * * * *", "the step in '*/0' must be a positive number"),
        ("0 9 * * funday", "'funday' is not a valid day-of-week value"),
        ("0 9 1,,2 * *", "has an empty item"),
        ("0 0 1 * 1", "not both"),
        ("* * *", "expected 5, 6 or 7 fields, found 3"),
        ("", "expected 5, 6 or 7 fields, found 0"),
        ("0 0 0 0 0 0 0 0", "found 8"),
    ],
)
def test_an_invalid_schedule_says_what_is_wrong_and_gives_an_example(expression, message):
    with pytest.raises(ValueError, match="Invalid schedule") as excinfo:
        parse_schedule(expression)
    assert message in str(excinfo.value)
    assert "'*/15 2 * * 1-5'" in str(excinfo.value)  # the example


def test_validate_timezone_accepts_iana_names_and_defaults_to_utc():
    assert validate_timezone("Europe/Amsterdam") == "Europe/Amsterdam"
    assert validate_timezone("") == "UTC"  # the default TIME_ZONE
    with pytest.raises(
        ValueError,
        match=r"Unknown time zone 'Mars/Olympus'; use an IANA name such as Europe/Amsterdam",
    ):
        validate_timezone("Mars/Olympus")
    with pytest.raises(ValueError, match="Unknown time zone"):
        validate_timezone("../etc/passwd")


# --- sync_flow_schedule ---------------------------------------------------------------


@pytest.fixture
def flow(application) -> Flow:
    return Flow.objects.create(
        application=application,
        name="Update Usage Stats",
        schedule="? 0 2 ? * *",
        timezone="America/Los_Angeles",
    )


def test_sync_flow_schedule_creates_one_periodic_task_in_the_flow_s_time_zone(flow):
    task = sync_flow_schedule(flow)
    task.refresh_from_db()
    assert task.name == f"flow-schedule:{flow.pk}"
    assert task.task == "flowsite.run_scheduled_flow"
    assert json.loads(task.args) == [flow.pk]
    assert task.enabled
    assert "Update Usage Stats" in task.description
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_month) == ("0", "2", "*")
    assert (crontab.month_of_year, crontab.day_of_week) == ("*", "*")
    assert str(crontab.timezone) == "America/Los_Angeles"
    assert task.schedule.tz == ZoneInfo("America/Los_Angeles")  # what beat will use


def test_sync_flow_schedule_is_idempotent(flow):
    first = sync_flow_schedule(flow)
    changed_at = PeriodicTask.objects.get(pk=first.pk).date_changed
    again = sync_flow_schedule(flow)
    assert again.pk == first.pk
    assert PeriodicTask.objects.filter(name__startswith="flow-schedule:").count() == 1
    assert PeriodicTask.objects.get(pk=first.pk).date_changed == changed_at  # beat not woken
    assert CrontabSchedule.objects.count() == 1


def test_changing_expression_and_time_zone_updates_the_same_periodic_task(flow):
    first = sync_flow_schedule(flow)
    PeriodicTask.objects.filter(pk=first.pk).update(last_run_at=timezone.now())
    flow.schedule = "*/15 2 * * 1-5"
    flow.timezone = "Asia/Kolkata"
    flow.save()
    task = sync_flow_schedule(flow)
    task.refresh_from_db()
    assert task.pk == first.pk
    assert PeriodicTask.objects.filter(name=f"flow-schedule:{flow.pk}").count() == 1
    assert str(task.crontab.timezone) == "Asia/Kolkata"
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == (
        "*/15",
        "2",
        "1-5",
    )
    assert task.last_run_at is None  # counts from the change: no catch-up run
    assert CrontabSchedule.objects.count() == 1  # the old crontab is gone


def test_a_crontab_shared_with_another_task_is_kept(flow, application):
    other = Flow.objects.create(
        application=application, name="other", schedule=flow.schedule, timezone=flow.timezone
    )
    shared = sync_flow_schedule(flow).crontab_id
    assert sync_flow_schedule(other).crontab_id == shared
    flow.timezone = "UTC"
    sync_flow_schedule(flow)
    assert CrontabSchedule.objects.filter(pk=shared).exists()


def test_a_disabled_flow_keeps_its_periodic_task_disabled(flow):
    sync_flow_schedule(flow)
    flow.disabled = True
    assert sync_flow_schedule(flow).enabled is False
    assert PeriodicTask.objects.get(name=f"flow-schedule:{flow.pk}").enabled is False
    flow.disabled = False
    assert sync_flow_schedule(flow).enabled is True


def test_a_blank_schedule_deletes_the_periodic_task(flow):
    sync_flow_schedule(flow)
    flow.schedule = "  "
    assert sync_flow_schedule(flow) is None
    assert not PeriodicTask.objects.filter(name=f"flow-schedule:{flow.pk}").exists()
    assert not CrontabSchedule.objects.exists()
    assert sync_flow_schedule(flow) is None  # and again


def test_delete_flow_schedule_removes_the_task_of_a_deleted_flow(flow):
    sync_flow_schedule(flow)
    flow_id = flow.pk
    flow.delete()
    delete_flow_schedule(flow_id)
    assert not PeriodicTask.objects.filter(name=f"flow-schedule:{flow_id}").exists()


def test_sync_flow_schedule_refuses_an_invalid_schedule_and_changes_nothing(flow):
    sync_flow_schedule(flow)
    flow.schedule = "0 0 0 L * ?"
    with pytest.raises(ValueError, match="'L'"):
        sync_flow_schedule(flow)
    flow.schedule = "0 9 * * *"
    flow.timezone = "Nowhere/Special"
    with pytest.raises(ValueError, match="Unknown time zone"):
        sync_flow_schedule(flow)
    assert PeriodicTask.objects.get(name=f"flow-schedule:{flow.pk}").crontab.hour == "2"


# --- next_run_at ----------------------------------------------------------------------


def unsaved_flow(schedule: str, tz: str, **fields) -> Flow:
    return Flow(name="f", schedule=schedule, timezone=tz, **fields)


def test_next_run_at_is_dst_correct_when_los_angeles_springs_forward():
    flow = unsaved_flow("0 9 * * *", "America/Los_Angeles")
    # Saturday 2026-03-07 12:00 PST (20:00 UTC), the day before DST starts.
    first = next_run_at(flow, now=utc(2026, 3, 7, 20, 0))
    assert first == utc(2026, 3, 8, 16, 0)  # 09:00 PDT, not 17:00 UTC
    assert first.utcoffset() == timedelta(hours=-7)
    assert (first.hour, first.tzinfo) == (9, ZoneInfo("America/Los_Angeles"))
    assert next_run_at(flow, now=first) == utc(2026, 3, 9, 16, 0)


def test_next_run_at_from_noon_utc_is_nine_pst_the_same_morning():
    # 2026-03-07 12:00 UTC is 04:00 PST: 09:00 PST (17:00 UTC) that day comes first.
    flow = unsaved_flow("0 9 * * *", "America/Los_Angeles")
    assert in_utc(next_runs(flow, 3, now=utc(2026, 3, 7, 12, 0))) == [
        utc(2026, 3, 7, 17, 0),
        utc(2026, 3, 8, 16, 0),
        utc(2026, 3, 9, 16, 0),
    ]


def test_a_skipped_wall_time_fires_an_hour_later_on_the_spring_forward_day():
    flow = unsaved_flow("30 2 * * *", "Europe/Amsterdam")
    runs = next_runs(flow, 3, now=utc(2026, 3, 28, 12, 0))
    assert in_utc(runs) == [
        utc(2026, 3, 29, 1, 30),
        utc(2026, 3, 30, 0, 30),
        utc(2026, 3, 31, 0, 30),
    ]
    assert (runs[0].hour, runs[0].minute) == (3, 30)  # 02:30 does not exist that night
    assert [run.hour for run in runs[1:]] == [2, 2]


def test_a_repeated_wall_time_fires_once_when_the_clocks_go_back():
    flow = unsaved_flow("30 2 * * *", "Europe/Amsterdam")
    runs = next_runs(flow, 2, now=utc(2026, 10, 24, 12, 0))
    assert in_utc(runs) == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]  # CEST, then CET


@pytest.mark.parametrize(
    ("schedule", "tz", "start"),
    [
        ("0 9 * * *", "America/Los_Angeles", utc(2026, 3, 6, 12)),
        ("30 2 * * *", "Europe/Amsterdam", utc(2026, 3, 27, 12)),
        ("30 2 * * *", "Europe/Amsterdam", utc(2026, 10, 23, 12)),
        ("0 * * * *", "Europe/Amsterdam", utc(2026, 3, 28, 22)),
        ("*/20 1-3 * * *", "America/New_York", utc(2026, 11, 1, 4)),
        ("0 9 * * 1-5", "Asia/Kolkata", utc(2026, 3, 5, 12)),
    ],
)
def test_next_runs_agree_with_beat_s_own_crontab_around_dst_changes(schedule, tz, start):
    flow = unsaved_flow(schedule, tz)
    beat = TzAwareCrontab(**parse_schedule(schedule).as_kwargs(), tz=ZoneInfo(tz))
    expected, last = [], start.astimezone(ZoneInfo(tz))
    for _ in range(6):
        begin, delta, _now = beat.remaining_delta(last)
        # Beat's next last_run_at is a clock reading: a real (normalised) time.
        last = (begin + delta).astimezone(UTC).astimezone(ZoneInfo(tz))
        expected.append(last)
    assert in_utc(next_runs(flow, 6, now=start)) == in_utc(expected)


def test_there_is_no_next_run_without_a_schedule_or_when_disabled():
    assert next_run_at(unsaved_flow("", "UTC")) is None
    assert next_run_at(unsaved_flow("0 9 * * *", "UTC", disabled=True)) is None
    later = next_run_at(unsaved_flow("* * * * *", ""))  # blank zone: UTC
    assert timezone.now() < later <= timezone.now() + timedelta(minutes=1)


# --- start_scheduled_run (the task beat sends) ----------------------------------------


@pytest.fixture
def empty_flow(application) -> Flow:
    return Flow.objects.create(application=application, name="nothing", schedule="0 9 * * *")


def test_a_scheduled_run_is_created_and_run_on_the_worker_that_got_the_tick(empty_flow):
    execution_id = _scheduled(empty_flow.pk)
    execution = Execution.objects.get(pk=execution_id)
    assert execution.status == Status.SUCCEEDED, execution.error
    assert execution.trigger == "schedule"
    assert execution.caller is None
    assert execution.caller_label == "schedule"
    assert execution.celery_task_id == ""  # no second queue hop


def test_the_celery_task_runs_the_flow_under_its_periodic_task_name(empty_flow):
    assert run_scheduled_flow.name == "flowsite.run_scheduled_flow"
    assert "flowsite.run_scheduled_flow" in celery_app.tasks
    execution_id = run_scheduled_flow(empty_flow.pk)
    assert Execution.objects.get(pk=execution_id).status == Status.SUCCEEDED


@pytest.mark.parametrize("status", [Status.QUEUED, Status.RUNNING])
def test_a_tick_is_skipped_while_a_scheduled_run_is_queued_or_running(empty_flow, status):
    busy = services.create_execution(flow=empty_flow, trigger=SCHEDULE, caller_label="schedule")
    Execution.objects.filter(pk=busy.pk).update(status=status, heartbeat_at=timezone.now())
    assert _scheduled(empty_flow.pk) is None
    assert Execution.objects.filter(flow=empty_flow).count() == 1


def test_a_tick_sent_before_the_schedule_was_removed_starts_nothing(empty_flow):
    """A tick waiting in the broker ran the flow after its builder had removed the
    schedule (an outside probe)."""
    Flow.objects.filter(pk=empty_flow.pk).update(schedule="")
    assert _scheduled(empty_flow.pk) is None
    assert not Execution.objects.exists()


def test_runs_of_other_triggers_do_not_hold_back_the_schedule(empty_flow, owner):
    other = services.create_execution(flow=empty_flow, trigger=Execution.Trigger.RUN, caller=owner)
    Execution.objects.filter(pk=other.pk).update(status=Status.RUNNING)
    finished = services.create_execution(flow=empty_flow, trigger=SCHEDULE)
    Execution.objects.filter(pk=finished.pk).update(status=Status.FAILED)
    assert _scheduled(empty_flow.pk) is not None


def test_an_abandoned_queued_scheduled_run_is_failed_and_does_not_block(empty_flow, settings):
    settings.FLOWSITE_STALE_EXECUTION_SECONDS = 60
    lost = services.create_execution(flow=empty_flow, trigger=SCHEDULE)
    Execution.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert _scheduled(empty_flow.pk) is not None
    lost.refresh_from_db()
    assert lost.status == Status.FAILED
    assert "stopped before it started" in lost.error


def test_a_missing_or_disabled_flow_is_not_run(empty_flow):
    assert _scheduled(10**9) is None
    Flow.objects.filter(pk=empty_flow.pk).update(disabled=True)
    assert _scheduled(empty_flow.pk) is None
    assert not Execution.objects.exists()


def test_at_maximum_concurrency_a_scheduled_run_waits_in_the_queue(
    empty_flow, owner, monkeypatch, django_capture_on_commit_callbacks
):
    enqueued = []
    monkeypatch.setattr(queue, "send_run", enqueued.append)
    Flow.objects.filter(pk=empty_flow.pk).update(max_concurrency=1)
    api_run = services.create_execution(flow=empty_flow, trigger="api", caller=owner)
    Execution.objects.filter(pk=api_run.pk).update(status=Status.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        execution_id = _scheduled(empty_flow.pk)
    assert Execution.objects.get(pk=execution_id).status == Status.QUEUED
    assert enqueued == [execution_id]


def test_at_maximum_concurrency_with_the_reject_policy_the_tick_is_skipped(empty_flow, owner):
    Flow.objects.filter(pk=empty_flow.pk).update(max_concurrency=1, concurrency_policy="reject")
    api_run = services.create_execution(flow=empty_flow, trigger="api", caller=owner)
    Execution.objects.filter(pk=api_run.pk).update(status=Status.RUNNING)
    execution = Execution.objects.get(pk=_scheduled(empty_flow.pk))
    assert execution.status == Status.CANCELLED
    assert "maximum" in execution.error


# --- what celery beat does with the PeriodicTask --------------------------------------


def test_beat_loads_a_non_utc_crontab_in_the_hour_it_is_due(application, monkeypatch):
    flow = Flow.objects.create(
        application=application, name="kolkata", schedule="0 9 * * *", timezone="Asia/Kolkata"
    )
    task = sync_flow_schedule(flow)
    # The DatabaseScheduler only loads crontabs near the current hour (converted to the
    # server's zone): at 03:25 UTC the 09:00 IST (03:30 UTC) task must be among them.
    scheduler = DatabaseScheduler(app=celery_app, lazy=True)
    scheduler._finalize.cancel()  # no sync at interpreter exit
    monkeypatch.setattr("django_celery_beat.schedulers.aware_now", lambda: utc(2026, 3, 8, 3, 25))
    assert task.name in {model.name for model in scheduler.enabled_models()}

    entry = ModelEntry(PeriodicTask.objects.get(pk=task.pk), app=celery_app)
    now = utc(2026, 3, 7, 20, 0)
    entry.schedule.nowfun = lambda: now.astimezone(entry.schedule.tz)
    remaining = entry.schedule.remaining_estimate(now)
    assert now + remaining == utc(2026, 3, 8, 3, 30)  # 09:00 IST
    assert entry.schedule.is_due(now) == (False, remaining.total_seconds())
    assert next_run_at(flow, now=now) == now + remaining


# --- end to end: a real worker runs what beat sends -----------------------------------


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_the_periodic_task_of_a_flow_in_kolkata_and_beat_finds_it_due(
    application, embedded_broker, start_worker
):
    client, env = embedded_broker
    flow = Flow.objects.create(
        application=application, name="every minute", schedule="* * * * *", timezone="Asia/Kolkata"
    )
    task = sync_flow_schedule(flow)

    # Beat: a minute schedule whose last run was two minutes ago is due now.
    task.last_run_at = timezone.now() - timedelta(minutes=2)
    entry = ModelEntry(task, app=celery_app)
    assert entry.schedule.tz == ZoneInfo("Asia/Kolkata")
    assert entry.schedule.is_due(task.last_run_at).is_due
    assert entry.is_due().is_due

    # The worker: what beat sends for this entry is exactly the task's name and arguments.
    worker = start_worker(**env)
    client.send_task(task.task, args=json.loads(task.args))

    def succeeded():
        return Execution.objects.filter(
            flow=flow, trigger=SCHEDULE, status__in=Execution.TERMINAL
        ).first()

    execution = wait_for(succeeded, timeout=30, message=f"worker log:\n{worker.log()}")
    assert execution.status == Status.SUCCEEDED, execution.error
    assert execution.caller_label == "schedule"


@pytest.mark.parametrize(
    ("expression", "tz", "lifetime"),
    [
        ("* * * * *", "UTC", 60),
        ("*/15 9-17 * * 1-5", "UTC", 15 * 60),
        ("0 9,10 * * *", "UTC", 3600),
        ("0 2 * * *", "America/Los_Angeles", 23 * 3600),  # the day the clocks go forward
    ],
)
def test_a_tick_lives_as_long_as_its_schedule_s_shortest_gap(flow, expression, tz, lifetime):
    flow.schedule, flow.timezone = expression, tz

    task = sync_flow_schedule(flow)

    task.refresh_from_db()
    assert task.expire_seconds == lifetime
    assert ModelEntry(task, app=celery_app).options["expires"] == lifetime  # what beat sends


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_tick_that_waited_past_its_lifetime_starts_nothing_and_the_next_one_runs(
    application, embedded_broker, start_worker
):
    """Ticks that waited behind busy workers all ran, late, one after another (an outside
    probe)."""
    client, env = embedded_broker
    flow = Flow.objects.create(application=application, name="minutely", schedule="* * * * *")
    task = sync_flow_schedule(flow)
    options = ModelEntry(task, app=celery_app).options
    worker = start_worker(**env)

    # Sent as beat sends them: one published 61 s ago, whose minute has passed, then one now.
    stale = {**options, "expires": timezone.now() - timedelta(seconds=1)}
    client.send_task(task.task, args=json.loads(task.args), **stale)
    client.send_task(task.task, args=json.loads(task.args), **options)

    def ran():
        return Execution.objects.filter(flow=flow, status__in=Execution.TERMINAL).first()

    execution = wait_for(ran, timeout=30, message=f"worker log:\n{worker.log()}")
    wait_for(lambda: "Discarding revoked task" in worker.log(), timeout=10, message=worker.log())
    assert execution.status == Status.SUCCEEDED, execution.error
    assert Execution.objects.filter(flow=flow).count() == 1


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_a_real_beat_fires_a_kolkata_schedule_and_a_real_worker_runs_it(
    application, embedded_broker, start_worker, tmp_path
):
    """Up to a minute: beat fires `* * * * *` at the next minute boundary."""
    import subprocess
    import sys

    from tests.conftest import BASE_DIR, subprocess_env, wait_for

    _, env = embedded_broker
    flow = Flow.objects.create(
        application=application, name="beat", schedule="* * * * *", timezone="Asia/Kolkata"
    )
    sync_flow_schedule(flow)
    worker = start_worker(**env)
    beat_log = (tmp_path / "beat.log").open("w")
    beat = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "flowsite",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(tmp_path / "beat-schedule"),
        ],
        cwd=BASE_DIR,
        env=subprocess_env(**env),
        stdout=beat_log,
        stderr=subprocess.STDOUT,
    )
    try:

        def ran():
            return Execution.objects.filter(
                flow=flow, trigger="schedule", status="succeeded"
            ).first()

        execution = wait_for(
            ran,
            timeout=75,
            interval=0.5,
            message=f"a scheduled run; beat log:\n{(tmp_path / 'beat.log').read_text()}\n"
            f"worker log:\n{worker.log()}",
        )
        # Beat writes when it last sent each task at once, not every 3 minutes: the home
        # page's check of its housekeeping (every 30 s) said "dead" a third of the time.
        housekeeping = PeriodicTask.objects.filter(name=BEAT_TASK)
        wait_for(
            lambda: housekeeping.exclude(last_run_at=None).exists(),
            timeout=45,
            interval=0.5,
            message="beat never wrote when its housekeeping last ran",
        )
    finally:
        beat.terminate()
        beat.wait(15)
        beat_log.close()
    assert execution.caller_label == "schedule"


def a_builders_task(**fields) -> PeriodicTask:
    """A periodic task a builder made under Periodic tasks, which Flowsite does not manage."""
    return PeriodicTask.objects.create(
        name="A builder's task",
        task="flowsite.purge_executions",
        interval=IntervalSchedule.objects.create(every=1, period="hours"),
        **fields,
    )


def _scheduled(flow_id):
    execution = launch.scheduled(flow_id)
    return str(execution.pk) if execution is not None else None


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("0 2 * * *", "At 02:00, every day"),
        ("*/15 9-17 * * 1-5", "Every 15 minutes, between 09:00 and 17:59, Monday through Friday"),
        ("0 0 0 1 * ?", "At 00:00, on day 1 of the month"),  # Quartz
        ("*/5 * * * *", "Every 5 minutes"),
    ],
)
def test_a_schedule_is_described_in_words(expression, words):
    assert describe_schedule(expression) == words


@pytest.mark.django_db
def test_the_flow_page_shows_the_schedule_in_words_and_picks_the_time_zone(
    admin_client, application
):
    flow = Flow.objects.create(
        application=application, name="Nightly", schedule="0 2 * * *", timezone="Europe/Amsterdam"
    )
    html = admin_client.get(f"/admin/flows/flow/{flow.pk}/change/").content.decode()
    assert "At 02:00, every day (Europe/Amsterdam). Next: " in html
    assert '<select name="timezone"' in html
    assert '<option value="Europe/Amsterdam" selected>' in html


@pytest.mark.django_db
def test_the_beats_own_tasks_and_flow_schedules_are_read_only_in_the_admin(
    admin_client, application
):
    flow = Flow.objects.create(application=application, name="Nightly", schedule="0 2 * * *")
    sync_flow_schedule(flow)
    own = PeriodicTask.objects.create(
        name="recover-stale-executions",
        task="flowsite.recover_stale_executions",
        interval=IntervalSchedule.objects.create(every=30, period="seconds"),
    )
    mine = a_builders_task()
    for task, where in (
        (own, "Flowsite itself"),
        (PeriodicTask.objects.get(name__startswith="flow-schedule:"), "the flow's page"),
    ):
        url = f"/admin/django_celery_beat/periodictask/{task.pk}/change/"
        html = admin_client.get(url).content.decode()
        assert escape(f"This task is managed by {where}") in html
        assert 'name="_save"' not in html
        assert (
            admin_client.post(url.replace("change", "delete"), {"post": "yes"}).status_code == 403
        )
        assert PeriodicTask.objects.filter(pk=task.pk).exists()
    html = admin_client.get(f"/admin/django_celery_beat/periodictask/{mine.pk}/change/").content
    assert b'name="_save"' in html


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["disable_tasks", "toggle_tasks", "run_tasks"])
def test_a_view_only_user_cannot_run_the_periodic_task_lists_actions(
    client, django_user_model, action
):
    """An outside probe: a user who may only view periodic tasks disabled and ran them."""
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user(
        "viewer", password="viewer-pass-1", is_staff=True
    )
    # Delete too, so that the list offers an action at all and the others' absence shows.
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_periodictask", "delete_periodictask"])
    )
    mine = a_builders_task()
    client.force_login(viewer)

    page = client.get("/admin/django_celery_beat/periodictask/").content.decode()
    client.post(
        "/admin/django_celery_beat/periodictask/",
        {"action": action, "_selected_action": [mine.pk]},
    )

    assert 'value="delete_selected"' in page
    assert f'value="{action}"' not in page  # not offered (run_tasks changes nothing stored)
    mine.refresh_from_db()
    assert mine.enabled is True


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "enabled"),
    [("disable_tasks", False), ("enable_tasks", True), ("toggle_tasks", False)],
)
def test_the_periodic_task_lists_bulk_actions_leave_managed_tasks_alone(
    admin_client, application, action, enabled
):
    """Found by an outside probe: "Disable selected" disabled a flow's schedule, which the
    flow's page still showed as running."""
    flow = Flow.objects.create(application=application, name="Nightly", schedule="0 2 * * *")
    managed = sync_flow_schedule(flow)
    mine = a_builders_task(enabled=action != "enable_tasks")

    response = admin_client.post(
        "/admin/django_celery_beat/periodictask/",
        {"action": action, "_selected_action": [managed.pk, mine.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Left alone: flow-schedule:" in response.content.decode()
    managed.refresh_from_db()
    mine.refresh_from_db()
    assert (managed.enabled, mine.enabled) == (True, enabled)


@pytest.mark.django_db
def test_bulk_delete_in_the_periodic_task_list_leaves_managed_tasks_alone(
    admin_client, application
):
    flow = Flow.objects.create(application=application, name="Nightly", schedule="0 2 * * *")
    managed = sync_flow_schedule(flow)
    mine = a_builders_task()

    admin_client.post(
        "/admin/django_celery_beat/periodictask/",
        {"action": "delete_selected", "_selected_action": [managed.pk, mine.pk], "post": "yes"},
    )

    assert list(PeriodicTask.objects.filter(pk__in=[managed.pk, mine.pk])) == [managed]


def test_a_template_does_not_run_on_its_schedule(flow):
    sync_flow_schedule(flow)
    flow.is_template = True

    assert sync_flow_schedule(flow) is None
    assert not PeriodicTask.objects.filter(name=f"flow-schedule:{flow.pk}").exists()


def test_a_tick_sent_before_the_flow_became_a_template_starts_nothing(empty_flow):
    Flow.objects.filter(pk=empty_flow.pk).update(is_template=True)

    assert launch.scheduled(empty_flow.pk) is None
    assert not Execution.objects.exists()


@pytest.mark.django_db(transaction=True)  # the scheduler closes its connections
def test_beat_does_not_run_a_tick_that_fell_while_it_was_down(application):
    """Beat started again after ticks passed unseen: Flowsite's scheduler counts the flows'
    schedules from its start; django-celery-beat's own runs each such schedule at once."""
    flow = Flow.objects.create(application=application, name="often", schedule="*/5 * * * *")
    task = sync_flow_schedule(flow)
    two_days_ago = timezone.now() - timedelta(days=2)
    mine = a_builders_task()

    def due(scheduler_class) -> dict[str, bool]:
        PeriodicTask.objects.filter(pk__in=[task.pk, mine.pk]).update(last_run_at=two_days_ago)
        scheduler = scheduler_class(app=celery_app)
        scheduler._finalize.cancel()  # no sync at interpreter exit
        return {
            name: entry.is_due().is_due
            for name, entry in scheduler.schedule.items()
            if name in (task.name, mine.name)
        }

    assert due(DatabaseScheduler) == {task.name: True, mine.name: True}
    assert due(FlowScheduler) == {task.name: False, mine.name: True}
