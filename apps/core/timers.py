"""Calls scheduled for later, on one thread per process instead of a thread per call.

A sync call's run is written when it ends, or as running after 0.9 s if it is still going
(apps/executions/services.py). That was a `threading.Timer` per call: a thread started and
woken again to be cancelled, on every call, though almost every run ends first. Here one
thread keeps the deadlines; a call that comes due runs on a thread of its own then, so a
slow one delays no other.
"""

import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable


class Handle:
    __slots__ = ("cancelled", "function")

    def __init__(self, function: Callable[[], None]):
        self.function = function
        self.cancelled = False

    def cancel(self) -> None:
        """It will not be called (if it is running already, it goes on)."""
        self.cancelled = True


class _Timers:
    def __init__(self):
        self.pid = os.getpid()
        self.due: list[tuple[float, int, Handle]] = []
        self.order = itertools.count()
        self.changed = threading.Condition()
        threading.Thread(target=self._loop, name="timers", daemon=True).start()

    def call_later(self, seconds: float, function: Callable[[], None]) -> Handle:
        handle = Handle(function)
        with self.changed:
            heapq.heappush(self.due, (time.monotonic() + seconds, next(self.order), handle))
            if self.due[0][2] is handle:
                self.changed.notify()
        return handle

    def _loop(self) -> None:
        while True:
            with self.changed:
                while not self.due or self.due[0][0] > time.monotonic():
                    self.changed.wait(self.due[0][0] - time.monotonic() if self.due else None)
                _, _, handle = heapq.heappop(self.due)
            if not handle.cancelled:
                threading.Thread(target=handle.function, daemon=True).start()


_timers: _Timers | None = None
_lock = threading.Lock()


def call_later(seconds: float, function: Callable[[], None]) -> Handle:
    """Call `function` on a thread of its own in `seconds`, unless cancelled first."""
    global _timers
    timers = _timers
    if timers is None or timers.pid != os.getpid():  # none yet, or forked
        with _lock:
            if _timers is None or _timers.pid != os.getpid():
                _timers = _Timers()
            timers = _timers
    return timers.call_later(seconds, function)
