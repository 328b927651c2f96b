"""Reads for executions."""

from django.db.models import QuerySet

from apps.executions.models import Execution


def jobs(
    *, flow_id: int | None = None, status: str | None = None, created_gte=None, created_lte=None
) -> QuerySet[Execution]:
    """Runs, newest first, filtered as the jobs API allows."""
    queryset = Execution.objects.all()
    if flow_id is not None:
        queryset = queryset.filter(flow_id=flow_id)
    if status:
        queryset = queryset.filter(status=status)
    if created_gte is not None:
        queryset = queryset.filter(created_at__gte=created_gte)
    if created_lte is not None:
        queryset = queryset.filter(created_at__lte=created_lte)
    return queryset
