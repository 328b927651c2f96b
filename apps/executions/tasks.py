"""Celery tasks: thin, they take ids and call services."""

from celery import shared_task
from django.conf import settings

from apps.executions import services


@shared_task(name="flowsite.run_execution", acks_late=True)
def run_execution(execution_id: str) -> None:
    services.run_execution(execution_id)


@shared_task(name="flowsite.recover_stale_executions")
def recover_stale_executions() -> int:
    return services.recover_stale_executions()


@shared_task(name="flowsite.purge_executions")
def purge_executions() -> int:
    return services.purge_executions(older_than_days=settings.FLOWSITE_EXECUTION_RETENTION_DAYS)
