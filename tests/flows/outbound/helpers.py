"""Helpers shared by the outbound client tests."""

import time
from dataclasses import dataclass, field

from apps.flows.outbound import ConnectionConfig


@dataclass
class FakeTime:
    """Records backoff sleeps instead of sleeping; the clock moves on by what was "slept"."""

    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def clock(self) -> float:
        return time.monotonic() + sum(self.sleeps)


def connection(base_uri: str, **options) -> ConnectionConfig:
    return ConnectionConfig(key="7:2026-11-22T10:00:00", base_uri=base_uri, **options)
