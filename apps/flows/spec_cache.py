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

from apps.core.memory import ShortMemory
from apps.flows.engine.spec import FlowSpec
from apps.flows.models import Flow
from apps.flows.pipeline import build_flow_spec

SECONDS = 0.5
# (flow id, the flow document it was built from) → the spec; swept at each deadline so
# that decrypted connection secrets do not outlive it
memory = ShortMemory(seconds=SECONDS, max_entries=256, sweep=True)
clear = memory.clear  # connected to the flows models' signals


def _document(flow: Flow) -> tuple:
    """What the spec takes from the flow row itself."""
    return (
        str(flow),
        flow.skip_retries,
        repr(flow.page_generators),
        repr(flow.page_processors),
        repr(flow.variables),
        repr(flow.connection_map),
    )


def flow_spec(flow: Flow) -> FlowSpec:
    """build_flow_spec(flow), or the spec built for the same document within SECONDS.

    A PipelineError (a resource deleted) is raised as build_flow_spec raises it, and
    nothing is remembered then."""
    if memory.seconds <= 0 or flow.pk is None:
        return build_flow_spec(flow)
    # Threads that miss at once share one build (ShortMemory.remembered). An entry of an
    # older document of the flow is no longer found, and is dropped at its deadline.
    return memory.remembered(
        (flow.pk, _document(flow)), lambda: build_flow_spec(flow), copy=_immutable
    )


def _immutable(spec: FlowSpec) -> FlowSpec:
    return spec  # a spec is never changed: every caller may share it
