"""A per-process memory of what every Execute() and Query() call reads before its records,
for at most half a second: the surface configuration's switches and integration accounts,
and the view or operation found by application and name (with its roles and its record
type's fields).

Why it is safe (issue "Hot path": a change takes effect everywhere within 1 s):
- an entry lives at most `SECONDS` (0.5 s) from the moment its read began, so a change
  made in any process by any means (admin, API, `QuerySet.update()`) is seen by every
  process within 0.5 s;
- saving or deleting, through the ORM in this process, the configuration, a view, an
  operation, a record type or field, an application or a role (and changing their
  many-to-many relations) clears the memory at once (signals in SurfaceConfig.ready());
- only what was found is remembered: an unknown view or operation is looked up every time;
- who the caller is, and whether they are a member of the view's roles, is checked on every
  call; records are never remembered, so a record written is in the next Query(); an
  operation's flow is run as the flow was read (its own checks, disabled included, run).
"""

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

from apps.core.memory import ShortMemory

SECONDS = 0.5
memory = ShortMemory(seconds=SECONDS, max_entries=1024)
clear = memory.clear  # connected to the signals of what is remembered

T = TypeVar("T")


@dataclass(frozen=True)
class Switches:
    """The surface configuration as a call needs it."""

    execute: bool
    query: bool
    accounts: frozenset[int]


def remembered(key: Hashable, read: Callable[[], T | None]) -> T | None:
    """read(), or what it gave for `key` within SECONDS (a shallow copy, so a caller's
    attributes are its own; the related objects are shared and only read)."""
    return memory.remembered(key, read)
