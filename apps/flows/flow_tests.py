"""Hooks for flow tests, which a higher app keeps (apps.flowtests): the tests that travel in
bundles, and the per-flow guard that runs them when a flow is saved.

Flows keeps no tests. The app that does registers a `FlowTestsHooks` from its
AppConfig.ready(), as records registers its connection kind in connection_kinds; with none
registered, bundles carry no tests and the guard never refuses.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FlowTestsHooks:
    # The documents of the given flows' tests, each naming its flow's "_flowId".
    export: Callable[[list], list[dict]]
    # Install a bundle's test documents: (documents, old → new flow ids, user).
    install: Callable[[list[dict], dict[str, str], Any], None]
    # The tests of this flow (as it is about to be saved) that fail: [{"_id", "name", "summary"}].
    failing: Callable[[Any], list[dict]]


HOOKS: list[FlowTestsHooks] = []


def register(hooks: FlowTestsHooks) -> None:
    HOOKS[:] = [hooks]


def export(flows: list) -> list[dict] | None:
    """None when no app keeps tests (the bundle has no "tests" list then)."""
    return HOOKS[0].export(flows) if HOOKS else None


def install(documents: list[dict], flow_ids: dict[str, str], user) -> None:
    if HOOKS and documents:
        HOOKS[0].install(documents, flow_ids, user)


def failing(flow) -> list[dict]:
    return HOOKS[0].failing(flow) if HOOKS else []


def guarded(flow) -> bool:
    """Whether saving `flow` (as it is about to be saved) must pass its tests first: its
    guard is on as edited, or as stored. A save that both turned the guard off and broke
    the tests skipped it (a PUT leaving the field out; an outside probe and the review)."""
    if flow.pk is None:
        return False
    return (
        flow.run_tests_on_save
        or type(flow).objects.filter(pk=flow.pk, run_tests_on_save=True).exists()
    )
