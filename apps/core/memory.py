"""A per-process memory of values for a short while: what the hot path reads again and again
(a key that just authenticated, the flows a route found, a built flow spec).

Why a short while is safe (issue "Hot path": a change takes effect everywhere within 1 s):
an entry lives at most `seconds` from the moment its caller *began* reading the value, so
a change made in any process, by any means (`QuerySet.update()` included), is seen by
every process within `seconds`. Callers also clear it at once when this process changes
what it remembers (signals connected in an AppConfig.ready()).

`sweep=True` drops expired entries even when no call comes (a timer), for values that
must not outlive their deadline, such as decrypted secrets. A forked child starts empty:
it has none of its parent's threads, and its lock could be held.

One read per key at a time: when an entry expires under load, the request threads that
miss it at once wait for the first one's read instead of each reading the same rows
(under Query() at c=16, those parallel reads took about a sixth of the web workers' Python
time, by py-spy --gil). What a waiter gets comes from a read that began before it asked, as
a remembered value does, and is no older than one.
"""

import copy
import os
import threading
import weakref
from collections.abc import Callable, Hashable
from time import monotonic
from typing import Any

from apps.core import timers

_MEMORIES: "weakref.WeakSet[ShortMemory]" = weakref.WeakSet()
# How long a caller waits for another thread's read of the same key before reading itself.
FLIGHT_WAIT_SECONDS = 5.0


class _Flight:
    """A read in progress: its outcome, for the callers that wait for it."""

    def __init__(self):
        self.done = threading.Event()
        self.read = False  # read() returned (its value may be falsy)
        self.value: Any = None  # a copy of what read() returned


class ShortMemory:
    def __init__(self, *, seconds: float, max_entries: int, sweep: bool = False):
        self.seconds = seconds  # 0: remember nothing (tests set it)
        self.max_entries = max_entries
        self.sweep = sweep
        self.clock = monotonic
        self._lock = threading.Lock()
        # key → (clock deadline, value)
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._flights: dict[Hashable, _Flight] = {}
        self._sweeper: timers.Handle | None = None
        self._sweep_at = 0.0
        _MEMORIES.add(self)

    def started(self) -> float:
        """When a read begins: pass it to put() so an entry is never older than `seconds`."""
        return self.clock()

    def get(self, key: Hashable, default: Any = None) -> Any:
        entry = self._entries.get(key)
        if entry is not None and entry[0] > self.clock():
            return entry[1]
        return default

    def put(self, key: Hashable, value: Any, *, started: float) -> None:
        if self.seconds <= 0:
            return
        deadline = started + self.seconds
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (deadline, value)
            if self.sweep:
                self._sweep_by(deadline)

    def remembered(
        self, key: Hashable, read: Callable[[], Any], *, copy: Callable[[Any], Any] = copy.copy
    ) -> Any:
        """read(), or what it gave for `key` within `seconds`. Each caller gets its own
        `copy` of a remembered value; only what was found (truthy) is remembered, so an
        unknown key is read every time and cannot push the known ones out. Callers who miss
        while another thread reads the key get that read's outcome (a copy) instead of
        reading too; if that read fails, each reads for itself."""
        value = self.get(key)
        if value is not None:
            return copy(value)
        if self.seconds <= 0:
            return read()
        with self._lock:
            flight = self._flights.get(key)
            leading = flight is None
            if leading:
                flight = self._flights[key] = _Flight()
        if not leading:
            if flight.done.wait(FLIGHT_WAIT_SECONDS) and flight.read:
                return None if flight.value is None else copy(flight.value)
            return read()
        try:
            started = self.started()
            value = read()
            flight.value = None if value is None else copy(value)
            flight.read = True
            if value:
                self.put(key, flight.value, started=started)
            return value
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self, **_signal_arguments) -> None:
        """Forget everything (connect it to the signals of what is remembered)."""
        with self._lock:
            self._entries.clear()

    def __bool__(self) -> bool:
        return bool(self._entries)

    def _sweep_by(self, deadline: float) -> None:
        """Have expired entries dropped by `deadline` (called holding the lock)."""
        if self._sweeper is not None:
            if self._sweep_at <= deadline:
                return
            self._sweeper.cancel()
        self._sweep_at = deadline
        self._sweeper = timers.call_later(max(0.0, deadline - self.clock()), self._sweep)

    def _sweep(self) -> None:
        with self._lock:
            self._sweeper = None
            now = self.clock()
            for key in [key for key, entry in self._entries.items() if entry[0] <= now]:
                del self._entries[key]
            if self._entries:
                self._sweep_by(min(entry[0] for entry in self._entries.values()))

    def _forget_in_child(self) -> None:
        self._lock = threading.Lock()
        self._sweeper = None
        self._entries.clear()
        self._flights.clear()


def _forget_in_child() -> None:
    for memory in list(_MEMORIES):
        memory._forget_in_child()


os.register_at_fork(after_in_child=_forget_in_child)
