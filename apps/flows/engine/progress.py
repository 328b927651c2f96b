"""A run's progress while it runs: per-step counters and the current step, reported now
and then through a ProgressPort (the executions app writes each report with one UPDATE).

Cheap by construction, and batched by time and by page, never per record:
- nothing is reported in a run's first INTERVAL seconds, so a short run (most sync API
  calls) reports nothing at all;
- then at most once per INTERVAL, at a page boundary (the page's counters complete, a
  page generator about to read the next page);
- inside a page only once that page has taken INTERVAL itself (a big page, slow lookups),
  from the checkpoints between its records and steps, so a long page still shows the
  step it is in. Waiting for the next page is always reported as the generator's time,
  not as the last processor's (which finished a moment before).
"""

from collections.abc import Callable
from typing import Any, Protocol

INTERVAL = 0.5  # seconds


class ProgressPort(Protocol):
    def report(self, progress: dict[str, Any]) -> None:
        """`{"current": step path or "", "numSuccess", "numError", "steps": [{"path",
        "kind", "name", "in", "out", "errors"}, …]}`, every step of the flow in order."""
        ...


class ProgressMeter:
    """Decides when a run reports; `snapshot(current)` says what (engine.runner)."""

    def __init__(
        self,
        port: ProgressPort,
        snapshot: Callable[[str], dict[str, Any]],
        clock: Callable[[], float],
        interval: float = INTERVAL,
    ):
        self.port = port
        self.snapshot = snapshot
        self.clock = clock
        self.interval = interval
        now = clock()
        self.next_at = now + interval  # nothing in the run's first interval
        self.page_started: float | None = None  # None: between pages
        self.current = ""
        self.reports = 0

    def between_pages(self, reader: str) -> None:
        """A page is done (or none started yet); `reader` reads the next one ("" if none)."""
        self.page_started = None
        self.current = reader
        self.tick()

    def page_begins(self) -> None:
        self.page_started = self.clock()

    def at(self, path: str) -> None:
        """The page enters step `path` (the checkpoint that follows may report it)."""
        self.current = path

    def tick(self) -> None:
        """From the run's checkpoints: report if one is due."""
        now = self.clock()
        if now < self.next_at:
            return
        if self.page_started is not None and now - self.page_started < self.interval:
            return  # a page under way reports only once it is itself slow
        self.next_at = now + self.interval
        self.reports += 1
        self.port.report(self.snapshot(self.current))
