from django.apps import AppConfig


class SurfaceConfig(AppConfig):
    """The integration surface: Execute() operations and Query() views (Flowfinity REST)."""

    name = "apps.surface"
    label = "surface"
    verbose_name = "Integration surface"

    def ready(self):
        from django.db.models import signals

        from apps.accounts.models import Role
        from apps.flows.models import Application
        from apps.records.models import RecordField, RecordType
        from apps.records.signals import fields_changing, fields_retyped
        from apps.surface import lookup_cache
        from apps.surface.models import Operation, SurfaceConfiguration, View
        from apps.surface.selectors import views_broken_by
        from apps.surface.signals import index_ordering_on_commit, reindex_orderings_on_commit

        signals.post_save.connect(
            index_ordering_on_commit, sender=View, dispatch_uid="view-ordering-index"
        )
        fields_retyped.connect(reindex_orderings_on_commit, dispatch_uid="view-ordering-reindex")
        fields_changing.connect(views_broken_by, dispatch_uid="views-broken-by-fields")
        # What a surface call remembers is forgotten at once when this process changes it
        # (other processes within lookup_cache.SECONDS).
        remembered = (SurfaceConfiguration, View, Operation, RecordType, RecordField)
        for model in (*remembered, Application, Role):
            uid = f"surface-lookups-{model.__name__}"
            signals.post_save.connect(lookup_cache.clear, sender=model, dispatch_uid=uid)
            signals.post_delete.connect(lookup_cache.clear, sender=model, dispatch_uid=uid)
        for through in (
            SurfaceConfiguration.integration_accounts.through,
            View.roles.through,
            Operation.roles.through,
        ):
            signals.m2m_changed.connect(
                lookup_cache.clear, sender=through, dispatch_uid=f"surface-lookups-{through}"
            )
