"""What a script's step received in the last run that reached it: the sample records of the
script's Test page.

Flows records no runs. The app that does (executions) registers a reader from its
AppConfig.ready(), as records registers its connection kind in connection_kinds, so flows
asks without importing it. With no reader, or no such run, the page offers typed records.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ScriptStep:
    """A step of a flow's pipeline that calls a script, named as a run records it."""

    flow_id: int
    path: str  # "pageProcessors[2]"
    name: str  # the step's own name, else the script's


@dataclass(frozen=True)
class StepSample:
    """The records a step received in one run (the first few, as the run kept them)."""

    records: list
    run_id: str
    run_url: str
    flow_name: str
    path: str
    ran_at: datetime


# A reader gets the steps and the user asking; it answers None when it knows no such run or
# when the user may not read runs.
Reader = Callable[..., StepSample | None]
READERS: list[Reader] = []


def register(reader: Reader) -> None:
    if reader not in READERS:
        READERS.append(reader)


def last_input(steps: Sequence[ScriptStep], *, user: Any) -> StepSample | None:
    """The records one of `steps` received in the most recent run where it received any."""
    if not steps:
        return None
    for reader in READERS:
        if found := reader(steps, user=user):
            return found
    return None
