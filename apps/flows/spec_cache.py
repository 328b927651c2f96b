"""A per-process memory of built FlowSpecs, for at most half a second (issue "Hot path").

`build_flow_spec` reads the flow's exports, imports, scripts, connections and sub-flow
names and decrypts the connections' secrets: about a fifth of a small sync call. A spec
built less than `SECONDS` ago in this process for the same flow document is used again.

Why it is safe ("changes take effect everywhere within 1 s"; "nothing is cached that
changes the answer"):
- an entry is keyed by the flow's id *and* what the spec is made of on the flow itself
  (its name, application name, pipeline, variables, skip_retries), compared on every use:
  a flow changed in any way the caller's Flow object shows is built again at once;
- an entry lives at most `SECONDS` (0.5 s) from the moment its reads began, so a change
  to an export, import, script, connection or sub-flow made in any process by any means
  (admin, API, `QuerySet.update()`, which leaves `modified_at` alone) is seen by every
  process within 0.5 s;
- a save or delete of those models through the ORM in this process clears the memory at
  once (signals in FlowsConfig.ready());
- the decrypted connection secrets in a spec leave the memory at the entry's deadline: a
  timer drops expired entries even when no call comes (and a forked child starts empty);
- a spec is an immutable description: the script still runs in the sandbox, in a fresh
  realm, on every call, and everything a run does is computed from the spec per call.
"""

import os
import threading
from time import monotonic

from apps.flows.engine.spec import FlowSpec
from apps.flows.models import Flow
from apps.flows.pipeline import build_flow_spec

SECONDS = 0.5
MAX_ENTRIES = 256

_lock = threading.Lock()
# flow id → (monotonic deadline, the flow document it was built from, the spec)
_entries: dict[int, tuple[float, tuple, FlowSpec]] = {}
_sweeper: threading.Timer | None = None
_sweep_at = 0.0


def clear(**_signal_arguments) -> None:
    """Forget every spec (connected to the flows models' signals)."""
    with _lock:
        _entries.clear()


def _document(flow: Flow) -> tuple:
    """What the spec takes from the flow row itself."""
    return (
        str(flow),
        flow.skip_retries,
        repr(flow.page_generators),
        repr(flow.page_processors),
        repr(flow.variables),
    )


def flow_spec(flow: Flow) -> FlowSpec:
    """build_flow_spec(flow), or the spec built for the same document within SECONDS.

    A PipelineError (a resource deleted) is raised as build_flow_spec raises it, and
    nothing is remembered then."""
    if SECONDS <= 0 or flow.pk is None:
        return build_flow_spec(flow)
    document = _document(flow)
    started = monotonic()
    entry = _entries.get(flow.pk)
    if entry is not None and entry[0] > started and entry[1] == document:
        return entry[2]
    spec = build_flow_spec(flow)
    deadline = started + SECONDS  # from before the reads: never older than SECONDS
    with _lock:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        _entries[flow.pk] = (deadline, document, spec)
        _sweep_by(deadline)
    return spec


def _sweep_by(deadline: float) -> None:
    """Have expired entries dropped by `deadline` (called holding _lock)."""
    global _sweeper, _sweep_at
    if _sweeper is not None:
        if _sweep_at <= deadline:
            return
        _sweeper.cancel()
    _sweep_at = deadline
    _sweeper = threading.Timer(max(0.0, deadline - monotonic()), _sweep)
    _sweeper.daemon = True
    _sweeper.start()


def _sweep() -> None:
    global _sweeper
    with _lock:
        _sweeper = None
        now = monotonic()
        for pk in [pk for pk, entry in _entries.items() if entry[0] <= now]:
            del _entries[pk]
        if _entries:
            _sweep_by(min(entry[0] for entry in _entries.values()))


def _forget_in_child() -> None:
    """A forked process has none of its parent's threads: start empty."""
    global _lock, _sweeper
    _lock = threading.Lock()
    _sweeper = None
    _entries.clear()


os.register_at_fork(after_in_child=_forget_in_child)
