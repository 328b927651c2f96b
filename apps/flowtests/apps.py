from django.apps import AppConfig


class FlowTestsConfig(AppConfig):
    """Flow tests: runs saved with their recording and replayed offline against the flow."""

    name = "apps.flowtests"
    label = "flowtests"
    verbose_name = "Flow tests"

    def ready(self):
        from apps.flows import flow_tests
        from apps.flowtests import bundles

        # Tests travel in bundles and guard saves, through the flows app's hooks.
        flow_tests.register(
            flow_tests.FlowTestsHooks(
                export=bundles.export, install=bundles.install, failing=bundles.failing
            )
        )
