"""Handing runs to Celery workers, by task name (the tasks module calls the front door, so
the front door does not import it)."""

from celery import current_app

RUN_TASK = "flowsite.run_execution"


def send_run(execution_id: str) -> None:
    """Publish the run's task now; the process id doubles as the Celery task id, one id to
    look for in logs and Flower. Raises whatever the broker raises when it is down."""
    # Runs keep their outcome in Flowsite's tables: without ignore_result, a publish by
    # name also subscribed to the task's result on the result backend (a Redis round trip,
    # and ~19 s of its reconnect loop when Redis is down).
    current_app.send_task(RUN_TASK, args=[execution_id], task_id=execution_id, ignore_result=True)
