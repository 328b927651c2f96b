from django.apps import AppConfig


class FlowsConfig(AppConfig):
    """Applications, connections, exports, imports, scripts, flows and the engine."""

    name = "apps.flows"
    label = "flows"
    verbose_name = "Flows"
