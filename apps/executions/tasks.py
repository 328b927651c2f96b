"""Celery tasks: thin, they take ids and call services."""

from celery import shared_task
from django.conf import settings

from apps.executions import services
from apps.executions.models import Execution

QUEUE_RETRY_SECONDS = 0.5


@shared_task(bind=True, name="flowsite.run_execution", acks_late=True, max_retries=None)
def run_execution(self, execution_id: str) -> None:
    try:
        execution = services.run_execution(execution_id)
    except Execution.DoesNotExist:
        return  # deleted meanwhile (e.g. the broker failed and the API call undid it)
    if execution.status == Execution.Status.QUEUED:  # its flow is at maximum concurrency
        raise self.retry(countdown=QUEUE_RETRY_SECONDS)


@shared_task(name="flowsite.recover_stale_executions")
def recover_stale_executions() -> int:
    return services.recover_stale_executions()


@shared_task(name="flowsite.purge_executions")
def purge_executions() -> int:
    return services.purge_executions(older_than_days=settings.FLOWSITE_EXECUTION_RETENTION_DAYS)


@shared_task(name="flowsite.run_scheduled_flow")
def run_scheduled_flow(flow_id: int) -> str | None:
    """Beat's tick of a flow's schedule (its PeriodicTask): run the flow here, unless busy."""
    from apps.flows.schedules import start_scheduled_run

    return start_scheduled_run(flow_id)
