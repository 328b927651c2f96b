"""Bookkeeping only: a deleted flow takes its schedule's PeriodicTask with it."""

from apps.flows.schedules import delete_flow_schedule


def forget_schedule(sender, instance, **kwargs) -> None:
    delete_flow_schedule(instance.pk)
