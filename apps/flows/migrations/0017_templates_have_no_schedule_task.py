"""A template never runs on its schedule (its instances' first one): the periodic tasks
that existing templates' schedules still had are removed. Saving a template removes its
task since; before, beat sent its ticks and each one was skipped."""

from django.db import migrations
from django.utils import timezone

PERIODIC_TASK_PREFIX = "flow-schedule:"  # as apps.flows.schedules names them


def remove_template_tasks(apps, schema_editor):
    Flow = apps.get_model("flows", "Flow")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    names = [
        f"{PERIODIC_TASK_PREFIX}{pk}"
        for pk in Flow.objects.filter(is_template=True).values_list("pk", flat=True)
    ]
    if PeriodicTask.objects.filter(name__in=names).delete()[0]:
        # A beat running across the migration reads the tasks again.
        apps.get_model("django_celery_beat", "PeriodicTasks").objects.update_or_create(
            ident=1, defaults={"last_update": timezone.now()}
        )


class Migration(migrations.Migration):
    dependencies = [("flows", "0016_schedule_tick_lifetime")]

    operations = [migrations.RunPython(remove_template_tasks, migrations.RunPython.noop)]
