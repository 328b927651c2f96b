"""Run builders' JavaScript steps in a pool of QuickJS sandbox processes.

Scripts get a CPU-time limit (FLOWSITE_SCRIPT_TIMEOUT_MS), a memory limit
(FLOWSITE_SCRIPT_MEMORY_MB), no network, filesystem or host access, and cannot hang, grow or
crash the calling process. See pool.py (the parent's side) and worker.py (the sandbox's).

`results` is plain Python: the flow engine imports that module, not this package, which also
loads `pool` (it reads Django's settings).
"""

from apps.flows.sandbox.pool import SandboxPool, check_syntax, get_pool
from apps.flows.sandbox.results import ScriptAbort, ScriptError, ScriptResult

__all__ = [
    "SandboxPool",
    "ScriptAbort",
    "ScriptError",
    "ScriptResult",
    "check_syntax",
    "get_pool",
]
