"""The Celery application: settings come from Django's, under the CELERY_ prefix."""

import os

from celery import Celery
from celery.signals import beat_init, task_prerun, worker_init, worker_process_init
from django.db import close_old_connections

from apps.core import broker, redis_transport
from apps.core.heap import freeze_startup_objects

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flowsite.settings")

# `filesystem://` (the embedded default) means Flowsite's atomic filesystem transport in
# every process that loads this app: web (publishing), worker, beat and tests; `redis://`
# kombu's Redis transport with one client per channel for its plain commands.
broker.register()
redis_transport.register()

app = Celery("flowsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
def _connections_checked_like_a_request(**kwargs) -> None:
    """A worker keeps its database connection from task to task (CELERY_DB_REUSE_MAX):
    before each task, one that is broken or older than DB_CONN_MAX_AGE is replaced, as
    Django does at the start of every request."""
    close_old_connections()


@worker_init.connect
@worker_process_init.connect
@beat_init.connect
def _startup_objects_frozen(**kwargs) -> None:
    """The worker before it forks its pool, each pool process once it starts, and beat:
    what they loaded lives as long as they do (apps/core/heap.py)."""
    freeze_startup_objects()
