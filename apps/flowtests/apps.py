from django.apps import AppConfig


class FlowTestsConfig(AppConfig):
    """Flow tests: runs saved with their recording and replayed offline against the flow."""

    name = "apps.flowtests"
    label = "flowtests"
    verbose_name = "Flow tests"
