from django.db import models


class WorkerHeartbeat(models.Model):
    """A Celery worker's last sign of life (any worker, on any machine): /readyz tells
    whether one is alive."""

    hostname = models.CharField("hostname", max_length=255, primary_key=True)
    seen_at = models.DateTimeField("last seen")

    class Meta:
        verbose_name = "worker heartbeat"

    def __str__(self) -> str:
        return self.hostname
