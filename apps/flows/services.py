"""Writes for flows."""

from django.db import transaction

from apps.flows.models import Flow
from apps.flows.schedules import sync_flow_schedule


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
    sync_flow_schedule(clone)
    return clone


@transaction.atomic
def save_flow(*, flow: Flow) -> Flow:
    """Save a validated flow and keep its schedule's PeriodicTask in step."""
    flow.save()
    sync_flow_schedule(flow)
    return flow


@transaction.atomic
def set_flows_disabled(*, queryset, disabled: bool) -> int:
    flows = list(queryset.exclude(disabled=disabled))
    for flow in flows:
        flow.disabled = disabled
        save_flow(flow=flow)
    return len(flows)
