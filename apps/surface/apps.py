from django.apps import AppConfig


class SurfaceConfig(AppConfig):
    """The integration surface: Execute() operations and Query() views (Flowfinity REST)."""

    name = "apps.surface"
    label = "surface"
    verbose_name = "Integration surface"

    def ready(self):
        from django.db.models.signals import post_save

        from apps.surface.models import View
        from apps.surface.signals import index_ordering_on_commit

        post_save.connect(index_ordering_on_commit, sender=View, dispatch_uid="view-ordering-index")
