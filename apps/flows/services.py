"""Writes for flows."""

from django.db import transaction

from apps.flows.models import Flow


def _free_name(flow: Flow, base: str) -> str:
    names = set(Flow.objects.filter(application=flow.application).values_list("name", flat=True))
    name, number = base, 2
    while name in names:
        name, number = f"{base} ({number})", number + 1
    return name


@transaction.atomic
def clone_flow(*, flow: Flow, name: str | None = None) -> Flow:
    """A copy of the flow in the same application, using the same resources, disabled."""
    clone = Flow.objects.get(pk=flow.pk)
    clone.pk = None
    clone.name = _free_name(flow, name or f"{flow.name} (copy)")
    clone.disabled = True
    clone.full_clean()
    clone.save()
    return clone


def set_flows_disabled(*, queryset, disabled: bool) -> int:
    return queryset.exclude(disabled=disabled).update(disabled=disabled)
