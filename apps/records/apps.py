from django.apps import AppConfig


class RecordsConfig(AppConfig):
    """Low-code data tables: record types and their records."""

    name = "apps.records"
    label = "records"
    verbose_name = "Data tables"
