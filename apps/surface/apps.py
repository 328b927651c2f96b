from django.apps import AppConfig


class SurfaceConfig(AppConfig):
    """The integration surface: Execute() operations and Query() views (Flowfinity REST)."""

    name = "apps.surface"
    label = "surface"
    verbose_name = "Integration surface"
