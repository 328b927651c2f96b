from django.apps import AppConfig


class ExecutionsConfig(AppConfig):
    """Runs of flows: executions, their steps and per-record errors."""

    name = "apps.executions"
    label = "executions"
    verbose_name = "Executions"

    def ready(self):
        from django.db.models import signals

        from apps.executions import route_cache, selectors
        from apps.flows import step_samples
        from apps.flows.models import Application, Flow

        # A script's Test page offers what its step received in the last run.
        step_samples.register(selectors.last_script_input)

        # A flow or application saved or deleted in this process forgets the remembered
        # routes at once (other processes within route_cache.SECONDS).
        for model in (Application, Flow):
            uid = f"routes-{model.__name__}"
            signals.post_save.connect(route_cache.clear, sender=model, dispatch_uid=uid)
            signals.post_delete.connect(route_cache.clear, sender=model, dispatch_uid=uid)
