from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    """Runs of flows: executions, their steps and per-record errors."""

    name = "apps.executions"
    label = "executions"
    verbose_name = "Executions"
