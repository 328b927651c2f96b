"""Health endpoints for load balancers and orchestrators."""

import logging

from django.http import JsonResponse
from django.views.decorators.http import require_safe

from apps.core.problems import problem_response
from apps.core.startup import check_broker, check_database
from apps.core.workers import ALIVE_SECONDS, worker_present

logger = logging.getLogger(__name__)


@require_safe
def healthz(request):
    """The process is up. Touches nothing else, so it stays cheap and always answers."""
    return JsonResponse({"status": "ok"})


@require_safe
def readyz(request):
    """Ready to serve: the database answers and could take a write now (not read-only, its
    write lock not held past 2 s), and the Celery broker answers. `worker` says whether a
    Celery worker is alive (unknown while either does not answer); with ?worker=1 an absent
    worker makes it 503 too."""
    failures = {
        name: reason
        for name, reason in (
            ("database", check_database(writable=True)),
            ("broker", check_broker()),
        )
        if reason
    }
    checks = {name: "unavailable" if name in failures else "ok" for name in ("database", "broker")}
    if failures:
        # A heartbeat says a worker runs, not that it can take work through a broker the web
        # cannot reach (it said "present" while Redis was down).
        checks["worker"] = "unknown"
    else:
        checks["worker"] = "present" if worker_present() else "absent"
        if checks["worker"] == "absent" and request.GET.get("worker") in ("1", "true"):
            failures["worker"] = f"no Celery worker has beaten in the last {ALIVE_SECONDS} s"
    if failures:
        # The reasons name hosts and addresses: they go to the log, not to the caller.
        logger.warning("Not ready: %s", failures)
        down = ", ".join(failures)
        return problem_response(
            503, f"Not ready: {down} unavailable.", code="not-ready", checks=checks
        )
    return JsonResponse({"status": "ready", "checks": checks})
