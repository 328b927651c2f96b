"""Celery tasks: thin, they take ids and call the front door or a service."""

from celery import shared_task
from django.conf import settings

from apps.executions import launch, services
from apps.executions.models import Execution
from apps.executions.queue import RUN_TASK

QUEUE_RETRY_SECONDS = 0.5


@shared_task(bind=True, name=RUN_TASK, acks_late=True, max_retries=None)
def run_execution(self, execution_id: str) -> None:
    try:
        execution = launch.run_queued(execution_id)
    except Execution.DoesNotExist:
        return  # deleted meanwhile (e.g. the broker failed and the API call undid it)
    if execution.status == Execution.Status.QUEUED:  # its flow is at maximum concurrency
        raise self.retry(countdown=QUEUE_RETRY_SECONDS)


@shared_task(name="flowsite.recover_stale_executions")
def recover_stale_executions() -> int:
    """Runs whose worker died, and queued runs whose task message was lost."""
    requeued, failed = launch.requeue_lost_runs()
    stale = services.recover_stale_executions()
    launch.handle_errors_of(Execution.objects.filter(pk__in=stale))
    return len(stale) + requeued + failed


@shared_task(name="flowsite.purge_executions")
def purge_executions() -> int:
    return services.purge_executions(older_than_days=settings.FLOWSITE_EXECUTION_RETENTION_DAYS)


@shared_task(name="flowsite.run_scheduled_flow")
def run_scheduled_flow(flow_id: int) -> str | None:
    """Beat's tick of a flow's schedule (its PeriodicTask): run the flow here, unless busy."""
    execution = launch.scheduled(flow_id)
    return str(execution.pk) if execution is not None else None
