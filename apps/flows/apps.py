from django.apps import AppConfig


class FlowsConfig(AppConfig):
    """Applications, connections, exports, imports, scripts, flows and the engine."""

    name = "apps.flows"
    label = "flows"
    verbose_name = "Flows"

    def ready(self):
        from django.db.models.signals import post_delete

        from apps.flows.models import Flow
        from apps.flows.signals import forget_schedule

        post_delete.connect(forget_schedule, sender=Flow, dispatch_uid="flow-schedule")
