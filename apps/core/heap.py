"""The garbage collector in a long-lived server process.

Python's full collection walks every object the collector tracks. A web or worker process
holds ~120,000 of them from its start (Django, the apps, their modules and settings) that
live as long as it does, and every few hundred requests one full collection stopped every
thread of the process while it walked them: measured in-process on the greeting (a test
process, ~200,000 objects), 0.22 ms of GC per call and a 145 ms stall, against 0.05 ms
and 23 ms with them frozen; under load the greeting's p99 went from 131-157 ms to 47-65
ms (BENCHMARKS.md, "Hot path, stage 7"). Frozen objects are never collected: only what
is loaded at start-up is frozen.
"""

import gc


def freeze_startup_objects() -> None:
    """Move every object alive now out of the collector's sight (gc.freeze()). In a process
    that forks (Celery's pool), calling it before the fork also keeps the children from
    writing to the pages they share with it."""
    gc.collect()
    gc.freeze()
