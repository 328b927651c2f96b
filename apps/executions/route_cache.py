"""A per-process memory of the flows a route found, for at most half a second.

Every flow call first finds its flow: by resource path (the enabled flows on the path,
one query) or by application and flow name (one query). A route that found flows less
than `SECONDS` ago in this process is answered from here, each caller getting its own
copy of the flow.

Why it is safe (issue "Hot path": a flow disabled or moved to another route is refused,
or served at its new route, everywhere within 1 s):
- an entry lives at most `SECONDS` (0.5 s) from the moment its query began, so a change
  made in any process by any means (admin, API, `QuerySet.update()`) is seen by every
  process within 0.5 s;
- a flow or application saved or deleted through the ORM in this process clears the
  memory at once (signals in ExecutionsConfig.ready());
- only routes that found a flow are remembered: an unknown route is looked up every time
  (a new or newly enabled route answers at once, and random paths cannot push the
  remembered ones out);
- the flow's checks (disabled, API enabled, roles, the caller's privileges) still run on
  every call, on the flow as it was read.
"""

import copy
import os
import threading
from collections.abc import Callable
from time import monotonic

from apps.flows.models import Flow

SECONDS = 0.5
MAX_ENTRIES = 1024

_lock = threading.Lock()
# route → (monotonic deadline, the flows it found)
_entries: dict[tuple, tuple[float, tuple[Flow, ...]]] = {}


def clear(**_signal_arguments) -> None:
    """Forget every route (connected to the flow and application signals)."""
    with _lock:
        _entries.clear()


def flows(route: tuple, read: Callable[[], list[Flow]]) -> list[Flow]:
    """read(), or what it gave for this route within SECONDS (copies of the flows)."""
    if SECONDS <= 0:
        return read()
    started = monotonic()
    entry = _entries.get(route)
    if entry is not None and entry[0] > started:
        return [copy.copy(flow) for flow in entry[1]]
    found = read()
    if found:
        with _lock:
            if len(_entries) >= MAX_ENTRIES:
                _entries.clear()
            _entries[route] = (started + SECONDS, tuple(copy.copy(flow) for flow in found))
    return found


def _forget_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    _entries.clear()


os.register_at_fork(after_in_child=_forget_in_child)
