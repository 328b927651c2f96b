"""Flow schedules: parse cron / Quartz expressions, keep beat's PeriodicTask in sync with
the flow, compute the next run, and start a scheduled run on a worker.

A flow's `schedule` accepts 5-field cron (`*/15 2 * * 1-5`) and the Quartz style of the
reference documents: 6 or 7 fields with seconds first, `?` for "any", days of the week
1=SUN..7=SAT and an optional year (`0 0 2 ? * MON-FRI`, `0 30 9 ? * 2-6 *`). Everything is
stored in django-celery-beat as standard cron fields (0=SUN..6=SAT, numbers only) with the
flow's time zone on the CrontabSchedule, so beat fires it at wall-clock time in that zone.
"""

import functools
import itertools
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

from celery.schedules import crontab
from cron_descriptor import Options, get_description
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django_celery_beat import validators
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from apps.flows.models import Flow, default_time_zone

logger = logging.getLogger(__name__)

TASK_NAME = "flowsite.run_scheduled_flow"
PERIODIC_TASK_PREFIX = "flow-schedule:"
EXAMPLES = (
    "use 5-field cron such as '*/15 2 * * 1-5' (minute hour day-of-month month "
    "day-of-week) or Quartz such as '0 0 2 ? * MON-FRI' (seconds first)"
)
# How far next_run_at looks ahead: the rarest valid schedule (29 February on a given
# weekday is rejected, so 29 February alone) recurs within 8 years.
_SEARCH_DAYS = 366 * 9
# tick_lifetime: the longest a tick may wait (a yearly schedule's), where its fire times are
# looked at from, and how many of them at most (every minute for a week).
MAX_TICK_LIFETIME = 366 * 24 * 3600
LIFETIME_FROM = datetime(2025, 1, 1, tzinfo=UTC)
MAX_TICKS_LOOKED_AT = 7 * 24 * 60


@dataclass(frozen=True)
class CronFields:
    """A schedule as standard 5-field cron, the way CrontabSchedule stores it."""

    minute: str = "*"
    hour: str = "*"
    day_of_month: str = "*"
    month_of_year: str = "*"
    day_of_week: str = "*"

    def __str__(self) -> str:
        return " ".join(
            (self.minute, self.hour, self.day_of_month, self.month_of_year, self.day_of_week)
        )

    def as_kwargs(self) -> dict[str, str]:
        return {
            "minute": self.minute,
            "hour": self.hour,
            "day_of_month": self.day_of_month,
            "month_of_year": self.month_of_year,
            "day_of_week": self.day_of_week,
        }

    def to_crontab(self) -> crontab:
        return crontab(**self.as_kwargs())


@dataclass(frozen=True)
class _Field:
    label: str
    low: int
    high: int
    names: dict[str, int]
    note: str = ""


_MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
_WEEKDAYS = {
    name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))
}
_MINUTE = _Field("minute", 0, 59, {})
_HOUR = _Field("hour", 0, 23, {})
_DAY_OF_MONTH = _Field("day-of-month", 1, 31, {})
_MONTH = _Field("month", 1, 12, _MONTHS)
_CRON_DAY_OF_WEEK = _Field("day-of-week", 0, 7, _WEEKDAYS)  # 0 and 7 are Sunday
_QUARTZ_DAY_OF_WEEK = _Field(
    "day-of-week", 1, 7, {k: v + 1 for k, v in _WEEKDAYS.items()}, "; Quartz: 1 = SUN ... 7 = SAT"
)

_UNSUPPORTED = {
    "LW": "'LW' (the last weekday of the month)",
    "L": "'L' (the last day of the month or week)",
    "W": "'W' (the weekday nearest a day)",
}


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _invalid(expression: str, problem: str) -> ValueError:
    return ValueError(f"Invalid schedule {expression!r}: {problem}; {EXAMPLES}.")


def _atom(text: str, field: _Field, expression: str) -> int:
    if _is_number(text):
        value = int(text)
    elif text.upper() in field.names:
        return field.names[text.upper()]
    else:
        if "#" in text:
            what = "'#' (the nth weekday of the month, as in '6#3')"
            raise _invalid(expression, f"{what} is not supported")
        if letters := _UNSUPPORTED.get(text.upper().strip("0123456789")):
            raise _invalid(expression, f"{letters} is not supported")
        raise _invalid(expression, f"{text!r} is not a valid {field.label} value")
    if not field.low <= value <= field.high:
        raise _invalid(
            expression,
            f"{value} is out of range for the {field.label} field "
            f"({field.low}-{field.high}{field.note})",
        )
    return value


def _convert_item(item: str, field: _Field, expression: str, dow: str | None) -> str:
    """One comma-separated item of a field, as celery and CrontabSchedule accept it.

    `dow` is "cron" or "quartz" for the day-of-week field: cron's 7 and Quartz's 1..7 are
    mapped to 0=SUN..6=SAT."""
    base, has_step, step_text = item.partition("/")
    step = 1
    if has_step:
        if not _is_number(step_text) or int(step_text) == 0:
            raise _invalid(expression, f"the step in {item!r} must be a positive number")
        step = int(step_text)
    if base in {"*", "?"}:
        if has_step and dow == "quartz":
            base = "1"  # Quartz '*/2' starts on day 1 (SUN), cron's on day 0 (SUN): the same
        else:
            return f"*/{step}" if has_step else "*"
    if not base:
        raise _invalid(expression, f"{item!r} is not a valid {field.label} value")
    first_text, is_range, last_text = base.partition("-")
    first = _atom(first_text, field, expression)
    last = first  # a single value; with a step it runs to the end of the field
    if is_range:
        last = _atom(last_text, field, expression)
    elif has_step:
        last = field.high
    span = (
        list(range(first, last + 1))
        if first <= last
        else [
            *range(first, field.high + 1),
            *range(field.low, last + 1),
        ]
    )
    values = span[::step]
    if dow == "quartz":
        values = [value - 1 for value in values]
        first, last = first - 1, last - 1
    elif dow == "cron":
        values = [value % 7 for value in values]
    if not is_range and not has_step:
        return str(values[0])
    simple = (
        first <= last
        and values == list(range(first, last + 1))[::step]
        and not (dow == "cron" and last == 7)
    )
    if simple:
        text = f"{first}-{last}"
        return f"{text}/{step}" if has_step else text
    return ",".join(str(value) for value in sorted(set(values)))


def _convert(text: str, field: _Field, expression: str, dow: str | None = None) -> str:
    if text in {"*", "?"}:
        return "*"
    items = text.split(",")
    if any(not item for item in items):
        raise _invalid(expression, f"the {field.label} field {text!r} has an empty item")
    return ",".join(_convert_item(item, field, expression, dow) for item in items)


def parse_schedule(expression: str) -> CronFields:
    """5-field cron or 6/7-field Quartz to CronFields; ValueError says what is wrong."""
    parts = (expression or "").split()
    if len(parts) == 5:
        minute, hour, day_of_month, month, day_of_week = parts
        dow = "cron"
    elif len(parts) in {6, 7}:
        seconds, minute, hour, day_of_month, month, day_of_week, *year = parts
        dow = "quartz"
        if seconds not in {"?", "*"} and not (_is_number(seconds) and int(seconds) == 0):
            raise _invalid(
                expression,
                "Flowsite schedules have minute resolution: the seconds field must be 0",
            )
        if year and year[0] not in {"*", "?"}:
            raise _invalid(expression, "year restrictions are not supported (use '*')")
    else:
        raise _invalid(expression, f"expected 5, 6 or 7 fields, found {len(parts)}")
    fields = CronFields(
        minute=_convert(minute, _MINUTE, expression),
        hour=_convert(hour, _HOUR, expression),
        day_of_month=_convert(day_of_month, _DAY_OF_MONTH, expression),
        month_of_year=_convert(month, _MONTH, expression),
        day_of_week=_convert(
            day_of_week,
            _CRON_DAY_OF_WEEK if dow == "cron" else _QUARTZ_DAY_OF_WEEK,
            expression,
            dow,
        ),
    )
    try:
        schedule = fields.to_crontab()
        for validate, value in (
            (validators.minute_validator, fields.minute),
            (validators.hour_validator, fields.hour),
            (validators.day_of_month_validator, fields.day_of_month),
            (validators.month_of_year_validator, fields.month_of_year),
            (validators.day_of_week_validator, fields.day_of_week),
        ):
            validate(value)
    except (ValueError, ValidationError) as exc:
        detail = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        raise _invalid(expression, detail.rstrip(".")) from exc
    if schedule.day_of_month != set(range(1, 32)) and schedule.day_of_week != set(range(7)):
        # Cron runs when either matches, celery beat only when both do: refuse the ambiguity
        # (Quartz refuses it too).
        raise _invalid(
            expression,
            "restrict either the day of the month or the day of the week, not both "
            "(put '?' or '*' in one of them)",
        )
    return fields


@functools.cache
def _zone_names() -> frozenset[str]:
    # The IANA names, as CrontabSchedule's TimeZoneField accepts them (it leaves out Factory).
    return frozenset(available_timezones() - {"Factory", "localtime"})


def zone_names() -> list[str]:
    """The IANA time zone names a flow's schedule can use, sorted (the admin's picker)."""
    return sorted(_zone_names())


def describe_schedule(expression: str) -> str:
    """A schedule in words, as cron-descriptor writes it ("At 02:00, every day");
    ValueError when it is invalid."""
    fields = parse_schedule(expression)
    options = Options()
    options.use_24hour_time_format = True
    text = get_description(str(fields), options)
    every_day = fields.day_of_month == fields.month_of_year == fields.day_of_week == "*"
    if every_day and not text.lower().startswith("every"):
        text += ", every day"
    return text


def validate_timezone(name: str | None) -> str:
    """An IANA time zone name (blank: the server's TIME_ZONE), else ValueError."""
    name = (name or "").strip() or default_time_zone()
    if name not in _zone_names():
        raise ValueError(f"Unknown time zone {name!r}; use an IANA name such as Europe/Amsterdam")
    return name


def periodic_task_name(flow_id) -> str:
    return f"{PERIODIC_TASK_PREFIX}{flow_id}"


def _drop_unused_crontab(crontab_id: int | None) -> None:
    if crontab_id and not PeriodicTask.objects.filter(crontab_id=crontab_id).exists():
        CrontabSchedule.objects.filter(pk=crontab_id).delete()


@transaction.atomic
def sync_flow_schedule(flow: Flow) -> PeriodicTask | None:
    """Make beat's PeriodicTask `flow-schedule:<pk>` match the flow: created or updated when
    it has a schedule, deleted when it has none or is a template. Idempotent; raises
    ValueError for an invalid schedule or time zone (validate in the form first)."""
    if not (flow.schedule or "").strip() or flow.is_template:
        # A template's schedule is its instances' first one: the template never runs.
        delete_flow_schedule(flow.pk)
        return None
    fields = parse_schedule(flow.schedule)
    tz_name = validate_timezone(flow.timezone)
    spec = {**fields.as_kwargs(), "timezone": tz_name}
    schedule = CrontabSchedule.objects.filter(**spec).order_by("pk").first()
    if schedule is None:
        schedule = CrontabSchedule.objects.create(**spec)
    task = PeriodicTask.objects.select_for_update().filter(name=periodic_task_name(flow.pk)).first()
    wanted = {
        "task": TASK_NAME,
        "args": json.dumps([flow.pk]),
        "kwargs": "{}",
        "crontab_id": schedule.pk,
        "interval_id": None,
        "solar_id": None,
        "clocked_id": None,
        "one_off": False,
        "enabled": not flow.disabled,
        "expire_seconds": tick_lifetime(fields, tz_name),
        "description": (
            f'Runs the flow "{flow}" (id {flow.pk}) on its schedule {flow.schedule!r} in '
            f"{tz_name}. Managed by Flowsite: change the flow's schedule, not this task."
        ),
    }
    if task is None:
        return PeriodicTask.objects.create(name=periodic_task_name(flow.pk), **wanted)
    changed = {key: value for key, value in wanted.items() if getattr(task, key) != value}
    if not changed:
        return task
    previous_crontab = task.crontab_id
    for key, value in changed.items():
        setattr(task, key, value)
    if {"crontab_id", "enabled"} & changed.keys():
        # Count from now: a changed or re-enabled schedule does not fire a catch-up run
        # for the ticks it missed (beat starts from date_changed when last_run_at is empty).
        task.last_run_at = None
    task.save()
    if previous_crontab != schedule.pk:
        _drop_unused_crontab(previous_crontab)
    return task


@transaction.atomic
def delete_flow_schedule(flow_id) -> None:
    """Remove the flow's PeriodicTask (and its crontab, when nothing else uses it)."""
    for task in PeriodicTask.objects.filter(name=periodic_task_name(flow_id)):
        crontab_id = task.crontab_id
        task.delete()  # instance delete: tells beat the schedule changed
        _drop_unused_crontab(crontab_id)


def _fire_times_on(day, schedule: crontab, tz: ZoneInfo) -> list[datetime]:
    """The instants (UTC) at which `schedule` fires on a local calendar day.

    A wall time skipped by a DST change (02:30 on a spring-forward day) fires one gap later
    (03:30 local), and a repeated one (fall back) fires once, at its first occurrence:
    both what `datetime(..., fold=0)` means, and what celery beat's crontab does."""
    if (
        day.month not in schedule.month_of_year
        or day.day not in schedule.day_of_month
        or (day.weekday() + 1) % 7 not in schedule.day_of_week
    ):
        return []
    return [
        datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(UTC)
        for hour in schedule.hour
        for minute in schedule.minute
    ]


def _fire_times(schedule: crontab, tz: ZoneInfo, after: datetime):
    """The instants (UTC) at which `schedule` fires strictly after `after`, in order."""
    after = after.astimezone(UTC)
    day = after.astimezone(tz).date() - timedelta(days=1)  # a gap may move a time to today
    for _ in range(_SEARCH_DAYS):
        for instant in sorted({t for t in _fire_times_on(day, schedule, tz) if t > after}):
            yield instant
            after = instant
        day += timedelta(days=1)


def next_runs(flow: Flow, count: int = 5, now: datetime | None = None) -> list[datetime]:
    """The next `count` fire times of the flow's schedule, aware, in its time zone.

    Empty when it has no schedule or is disabled; ValueError when the schedule is invalid."""
    if not (flow.schedule or "").strip() or flow.disabled:
        return []
    schedule = parse_schedule(flow.schedule).to_crontab()
    tz = ZoneInfo(validate_timezone(flow.timezone))
    now = now or timezone.now()
    if timezone.is_naive(now):
        now = timezone.make_aware(now)
    runs = itertools.islice(_fire_times(schedule, tz, now), count)
    return [instant.astimezone(tz) for instant in runs]


def tick_lifetime(fields: CronFields, tz_name: str) -> int:
    """How long (seconds) a tick may wait in the broker before it is dropped: the shortest
    gap between two fire times (over a year, from a fixed day, so that the same schedule
    always gets the same lifetime). A tick that waited longer behind busy workers would run
    late, right after the one before it; the next tick runs instead."""
    fire_times = _fire_times(fields.to_crontab(), ZoneInfo(tz_name), LIFETIME_FROM)
    shortest, previous = MAX_TICK_LIFETIME, next(fire_times, None)
    for instant in itertools.islice(fire_times, MAX_TICKS_LOOKED_AT):
        if shortest <= 60 or instant - LIFETIME_FROM > timedelta(days=366):
            break
        shortest = min(shortest, int((instant - previous).total_seconds()))
        previous = instant
    return max(shortest, 60)


def next_run_at(flow: Flow, now: datetime | None = None) -> datetime | None:
    """When the flow's schedule fires next (strictly after `now`), aware, in its time zone;
    None when it has no schedule or is disabled. DST-correct."""
    runs = next_runs(flow, 1, now)
    return runs[0] if runs else None
