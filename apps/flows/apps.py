from django.apps import AppConfig


class FlowsConfig(AppConfig):
    """Applications, connections, exports, imports, scripts, flows and the engine."""

    name = "apps.flows"
    label = "flows"
    verbose_name = "Flows"

    def ready(self):
        from django.core import checks
        from django.db.models.signals import post_delete

        from apps.flows.checks import undecryptable_secrets
        from apps.flows.models import Flow
        from apps.flows.signals import forget_schedule

        post_delete.connect(forget_schedule, sender=Flow, dispatch_uid="flow-schedule")
        # It reads the database: `manage.py check --database default`, and `serve` at start.
        checks.register(undecryptable_secrets, checks.Tags.database)
        _forget_specs_on_changes()


def _forget_specs_on_changes() -> None:
    """A flow or a resource it uses saved or deleted in this process clears the
    remembered specs at once (other processes forget them within spec_cache.SECONDS)."""
    from django.db.models import signals

    from apps.flows import spec_cache
    from apps.flows.models import Application, Connection, Export, Flow, Import, Script

    for model in (Application, Connection, Export, Import, Script, Flow):
        uid = f"specs-{model.__name__}"
        signals.post_save.connect(spec_cache.clear, sender=model, dispatch_uid=uid)
        signals.post_delete.connect(spec_cache.clear, sender=model, dispatch_uid=uid)
