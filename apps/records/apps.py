from django.apps import AppConfig

from apps.flows.connection_kinds import register


class RecordsConfig(AppConfig):
    """Low-code data tables: record types and their records."""

    name = "apps.records"
    label = "records"
    verbose_name = "Data tables"

    def ready(self):
        from apps.records.connections import RECORDS  # it imports models: only once ready

        register(RECORDS)
