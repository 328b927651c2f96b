"""Give the periodic tasks of existing flow schedules the lifetime new ones get (a tick that
waits longer than its schedule's shortest gap is dropped; the next tick runs instead).

It uses the schedules module as it was when written: a later change there must keep this
migration working (or copy what it needs here)."""

from django.db import migrations
from django.utils import timezone

from apps.flows.schedules import (
    PERIODIC_TASK_PREFIX,
    parse_schedule,
    tick_lifetime,
    validate_timezone,
)


def set_lifetimes(apps, schema_editor):
    Flow = apps.get_model("flows", "Flow")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for task in PeriodicTask.objects.filter(name__startswith=PERIODIC_TASK_PREFIX):
        flow = Flow.objects.filter(pk=task.name.removeprefix(PERIODIC_TASK_PREFIX)).first()
        if flow is None or not flow.schedule.strip():
            continue
        try:
            lifetime = tick_lifetime(
                parse_schedule(flow.schedule), validate_timezone(flow.timezone)
            )
        except ValueError:  # left as it was: the flow's page says what is wrong
            continue
        PeriodicTask.objects.filter(pk=task.pk).update(expire_seconds=lifetime)
    # A beat running across the migration reads the tasks again (update() sends no signal).
    apps.get_model("django_celery_beat", "PeriodicTasks").objects.update_or_create(
        ident=1, defaults={"last_update": timezone.now()}
    )


class Migration(migrations.Migration):
    dependencies = [
        ("flows", "0015_flow_timezone_default"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(set_lifetimes, migrations.RunPython.noop)]
