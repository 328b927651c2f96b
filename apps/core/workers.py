"""Which Celery workers are alive: each worker's main process writes a heartbeat row every
few seconds (started by Celery's worker_ready signal, removed on a clean shutdown); a
worker that stopped beating for ALIVE_SECONDS is gone, whether it exited or was killed."""

import logging
import threading
from datetime import timedelta

from django.db import DatabaseError, connection
from django.utils import timezone

from apps.core.models import WorkerHeartbeat

logger = logging.getLogger(__name__)

BEAT_SECONDS = 5.0
ALIVE_SECONDS = 30


class _Beating(threading.Thread):
    def __init__(self, hostname: str):
        super().__init__(daemon=True, name="flowsite-worker-heartbeat")
        self.hostname = hostname
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while True:
                try:
                    WorkerHeartbeat.objects.update_or_create(
                        hostname=self.hostname, defaults={"seen_at": timezone.now()}
                    )
                except DatabaseError:  # e.g. a locked SQLite file: beat again next time
                    logger.warning("Worker heartbeat of %s failed", self.hostname, exc_info=True)
                if self.stopped.wait(BEAT_SECONDS):
                    return
        finally:
            connection.close()


_beating: _Beating | None = None


def start_heartbeat(sender=None, **kwargs) -> None:
    """Celery's worker_ready: start beating for this worker (its node name)."""
    global _beating
    hostname = getattr(sender, "hostname", None) or "worker"
    _beating = _Beating(str(hostname))
    _beating.start()


def stop_heartbeat(sender=None, **kwargs) -> None:
    """Celery's worker_shutdown: stop beating and say so at once."""
    if _beating is None:
        return
    _beating.stopped.set()
    _beating.join(timeout=5)
    try:
        WorkerHeartbeat.objects.filter(hostname=_beating.hostname).delete()
    except DatabaseError:
        logger.warning("Could not remove the heartbeat of %s", _beating.hostname, exc_info=True)
    finally:
        connection.close()


def worker_present(*, now=None) -> bool:
    now = now or timezone.now()
    return WorkerHeartbeat.objects.filter(
        seen_at__gte=now - timedelta(seconds=ALIVE_SECONDS)
    ).exists()
