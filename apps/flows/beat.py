"""Flowsite's beat scheduler: django-celery-beat's DatabaseScheduler, except that the
flows' schedules start counting when beat starts. A tick that fell while beat was down is
not run late once beat is back (README: missed ticks are not caught up); beat would run
each such schedule once at start, as overdue since its last run."""

from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from apps.flows.schedules import PERIODIC_TASK_PREFIX


class FlowScheduler(DatabaseScheduler):
    def setup_schedule(self):
        PeriodicTask.objects.filter(name__startswith=PERIODIC_TASK_PREFIX, enabled=True).update(
            last_run_at=timezone.now()
        )
        super().setup_schedule()
