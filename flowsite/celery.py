"""The Celery application: settings come from Django's, under the CELERY_ prefix."""

import os

from celery import Celery

from apps.core import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flowsite.settings")

# `filesystem://` (the embedded default) means Flowsite's atomic filesystem transport in
# every process that loads this app: web (publishing), worker, beat and tests.
broker.register()

app = Celery("flowsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
