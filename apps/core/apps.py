from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Cross-cutting plumbing: problem+json errors, parsing, throttling, health, serve."""

    name = "apps.core"
    label = "core"

    def ready(self):
        from celery.signals import worker_ready, worker_shutdown

        from apps.core import access_log, workers

        access_log.quiet_static_files()
        worker_ready.connect(workers.start_heartbeat, weak=False)
        worker_shutdown.connect(workers.stop_heartbeat, weak=False)
