from django.apps import AppConfig

from apps.flows.connection_kinds import register


class RecordsConfig(AppConfig):
    """Low-code data tables: record types and their records."""

    name = "apps.records"
    label = "records"
    verbose_name = "Data tables"

    def ready(self):
        # They import models: only once ready.
        from apps.records.connections import RECORDS, steps_broken_by
        from apps.records.signals import fields_changing

        register(RECORDS)
        fields_changing.connect(steps_broken_by, dispatch_uid="steps-broken-by-fields")
