"""Health endpoints for load balancers and orchestrators."""

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from apps.core.problems import problem_response
from apps.core.startup import check_broker, check_database


@require_GET
def healthz(request):
    """The process is up. Touches nothing else, so it stays cheap and always answers."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request):
    """Ready to serve: the database and the Celery broker answer."""
    failures = {
        name: reason
        for name, reason in (("database", check_database()), ("broker", check_broker()))
        if reason
    }
    checks = {name: failures.get(name, "ok") for name in ("database", "broker")}
    if failures:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in failures.items())
        return problem_response(503, f"Not ready. {reasons}", code="not-ready", checks=checks)
    return JsonResponse({"status": "ready", "checks": checks})
