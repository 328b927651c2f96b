"""Celery tasks of the surface: thin, they take ids and call services."""

from celery import shared_task

from apps.records.indexes import ensure_ordering_index
from apps.surface.models import View


@shared_task(name="flowsite.index_view_ordering")
def index_view_ordering(view_id: int) -> str | None:
    """Build the index a view's ordering needs (PostgreSQL), off the request."""
    view = View.objects.select_related("record_type").filter(pk=view_id).first()
    if view is None:
        return None
    return ensure_ordering_index(
        view.record_type, [(item["field"], item.get("direction", "asc")) for item in view.ordering]
    )
