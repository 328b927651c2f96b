from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting plumbing: problem+json errors, parsing, throttling, health, serve."""

    name = "apps.core"
    label = "core"
