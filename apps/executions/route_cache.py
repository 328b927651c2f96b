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
from collections.abc import Callable

from apps.core.memory import ShortMemory
from apps.flows.models import Flow

SECONDS = 0.5
# route → the flows it found
memory = ShortMemory(seconds=SECONDS, max_entries=1024)
clear = memory.clear  # connected to the flow and application signals


def flows(route: tuple, read: Callable[[], list[Flow]]) -> list[Flow]:
    """read(), or what it gave for this route within SECONDS (copies of the flows)."""
    return memory.remembered(route, read, copy=lambda found: [copy.copy(f) for f in found])
