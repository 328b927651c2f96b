"""Bookkeeping on saves: a view ordered by a field gets its index (PostgreSQL)."""

import logging

from django.db import connection, transaction

logger = logging.getLogger(__name__)


def index_ordering_on_commit(sender, instance, **kwargs) -> None:
    if connection.vendor != "postgresql" or not instance.ordering:
        return
    from apps.surface.tasks import index_view_ordering

    def enqueue() -> None:
        try:
            index_view_ordering.delay(instance.pk)
        except Exception:  # the view is saved; only its pages stay slower until re-saved
            logger.exception("Could not queue the ordering index of view %s", instance.pk)

    transaction.on_commit(enqueue)
