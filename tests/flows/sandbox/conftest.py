"""Real sandbox pools (subprocesses and all) for the sandbox tests."""

import time
from pathlib import Path

import pytest

from apps.flows.sandbox import SandboxPool
from apps.flows.sandbox import pool as pool_module


@pytest.fixture
def pool():
    """One sandbox process with a short CPU-time limit, so limit tests stay fast."""
    sandbox = SandboxPool(size=1, cpu_time_limit_ms=200, memory_limit_mb=64)
    yield sandbox
    sandbox.close()


@pytest.fixture
def roomy_pool():
    """A CPU-time limit no memory bomb reaches first, even on a busy machine."""
    sandbox = SandboxPool(size=1, cpu_time_limit_ms=3000, memory_limit_mb=64)
    yield sandbox
    sandbox.close()


@pytest.fixture
def global_pool(settings, monkeypatch):
    """get_pool() builds a fresh process-wide pool from these settings, closed afterwards."""
    settings.FLOWSITE_SANDBOX_PROCESSES = 1
    settings.FLOWSITE_SCRIPT_TIMEOUT_MS = 300
    settings.FLOWSITE_SCRIPT_MEMORY_MB = 32
    monkeypatch.setattr(pool_module, "_pool", None)
    yield
    if pool_module._pool is not None:
        pool_module._pool.close()


def wait_until_dead(pid: int, timeout: float = 5) -> None:
    """Wait until `pid` is gone or a zombie, i.e. it can no longer run or answer."""
    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state in {"Z", "X"}:
            return
        time.sleep(0.005)
    raise AssertionError(f"process {pid} is still alive after {timeout} s")
