"""Bookkeeping on saves: a view ordered by a field gets its index (PostgreSQL), again after
the type of a field of its record type changed."""

import logging

from django.db import connection, transaction

from apps.surface.models import View
from apps.surface.tasks import index_view_ordering

logger = logging.getLogger(__name__)


def index_ordering_on_commit(sender, instance, **kwargs) -> None:
    if instance.ordering:
        _index_on_commit([instance.pk])


def reindex_orderings_on_commit(sender, record_type, **kwargs) -> None:
    views = View.objects.filter(record_type=record_type).exclude(ordering=[])
    _index_on_commit(list(views.values_list("pk", flat=True)))


def _index_on_commit(view_ids: list[int]) -> None:
    if connection.vendor != "postgresql" or not view_ids:
        return

    def enqueue() -> None:
        for view_id in view_ids:
            try:
                index_view_ordering.delay(view_id)
            except Exception:  # the view is saved; only its pages stay slower until re-saved
                logger.exception("Could not queue the ordering index of view %s", view_id)

    transaction.on_commit(enqueue)
