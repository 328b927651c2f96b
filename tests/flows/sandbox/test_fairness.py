"""One flow cannot take every sandbox process: each owner has a share, the rest wait their turn."""

import threading
import time

import pytest

from apps.flows.sandbox import SandboxPool, ScriptError

LOOP = "function main() { while (true) {} }"
ECHO = "function main(ctx) { return ctx }"


@pytest.fixture
def fair_pool():
    """Two processes, so one flow's share is one; extra calls wait 300 ms at most."""
    sandbox = SandboxPool(size=2, cpu_time_limit_ms=1000, memory_limit_mb=64, queue_ms=300)
    yield sandbox
    sandbox.close()


class Calls:
    """Calls in background threads, each outcome kept: a value or the ScriptError's kind."""

    def __init__(self, pool: SandboxPool):
        self.pool = pool
        self.threads: list[threading.Thread] = []
        self.outcomes: list[str] = []
        self.finished: list[str] = []  # the owners, in the order their calls ended
        self.errors: list[ScriptError] = []

    def start(self, source: str, owner: str, **options) -> None:
        def call():
            try:
                self.pool.call(source, "main", {}, owner=owner, **options)
                self.outcomes.append("ok")
            except ScriptError as exc:
                self.outcomes.append(exc.kind)
                self.errors.append(exc)
            self.finished.append(owner)

        thread = threading.Thread(target=call)
        thread.start()
        self.threads.append(thread)

    def join(self) -> list[str]:
        for thread in self.threads:
            thread.join(timeout=10)
        return sorted(self.outcomes)


def wait_until(condition, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.005)


def test_a_flows_share_is_half_the_pool_rounded_up_unless_set():
    shares = {}
    for size in (1, 2, 3, 4):
        pool = SandboxPool(size=size, cpu_time_limit_ms=1000, memory_limit_mb=64)
        shares[size] = pool.slots_per_owner
        pool.close()
    assert shares == {1: 1, 2: 1, 3: 2, 4: 2}

    pool = SandboxPool(size=4, cpu_time_limit_ms=1000, memory_limit_mb=64, slots_per_owner=3)
    assert pool.slots_per_owner == 3
    pool.close()


def test_while_one_flow_loops_in_all_it_may_take_another_flows_script_still_runs(fair_pool):
    looping = Calls(fair_pool)
    for _ in range(4):
        looping.start(LOOP, "flow looping")
    wait_until(lambda: fair_pool.running() == {"flow looping": 1})

    for n in range(5):
        assert fair_pool.call(ECHO, "main", {"n": n}, owner="flow trivial").value == {"n": n}
    assert fair_pool.running() == {"flow looping": 1}  # it never got the second process

    # The one looping call that ran hit its CPU limit; the three that waited gave up.
    assert looping.join() == ["busy", "busy", "busy", "timeout"]


def test_a_call_that_gets_no_process_before_its_deadline_fails_as_busy_and_says_retry(
    fair_pool,
):
    looping = Calls(fair_pool)
    looping.start(LOOP, "flow looping")
    wait_until(lambda: fair_pool.running() == {"flow looping": 1})

    started = time.monotonic()
    with pytest.raises(ScriptError) as raised:
        fair_pool.call(ECHO, "main", {}, owner="flow looping")
    waited = time.monotonic() - started

    assert raised.value.kind == "busy"
    assert raised.value.message == (
        "Script was not started: no sandbox process was free for it within 300 ms "
        "(FLOWSITE_SCRIPT_QUEUE_MS): this flow's other calls hold its share of the 2 sandbox "
        "processes (1, FLOWSITE_SCRIPT_SLOTS_PER_FLOW). Retry later."
    )
    assert waited > 0.25
    assert fair_pool.running() == {"flow looping": 1}  # it gave up before the loop ended
    looping.join()


def test_the_run_deadline_bounds_the_wait_for_a_process_too(fair_pool):
    looping = Calls(fair_pool)
    looping.start(LOOP, "flow looping")
    wait_until(lambda: fair_pool.running() == {"flow looping": 1})

    with pytest.raises(ScriptError) as raised:
        fair_pool.call(ECHO, "main", {}, owner="flow looping", timeout_ms=50)

    assert raised.value.kind == "busy"
    assert "within 50 ms (the time left before the run's deadline)" in raised.value.message
    looping.join()


def test_a_freed_process_goes_to_the_waiting_flow_that_holds_fewest():
    """Flow A may use both processes, holds them, and queued a third call before flow B came:
    when A gives one back, B's call runs first, then A's (first come, first served would give
    it to A's third call first). The processes are held through the pool's own checkout, so
    that the test decides when they come back rather than a CPU-time limit on a busy machine."""
    pool = SandboxPool(
        size=2, cpu_time_limit_ms=1000, memory_limit_mb=64, slots_per_owner=2, queue_ms=30_000
    )
    try:
        held = [pool._checkout("flow A", 1000), pool._checkout("flow A", 1000)]
        calls = Calls(pool)
        calls.start(ECHO, "flow A")
        wait_until(lambda: pool.waiting() == 1)
        calls.start(ECHO, "flow B")
        wait_until(lambda: pool.waiting() == 2)

        pool._release("flow A", held.pop())  # one process for the two waiting calls
        assert calls.join() == ["ok", "ok"]
        assert calls.finished == ["flow B", "flow A"]

        pool._release("flow A", held.pop())
        assert pool.running() == {}
    finally:
        pool.close()


def test_calls_without_an_owner_are_not_capped(fair_pool):
    looping = Calls(fair_pool)
    looping.start(LOOP, None)
    looping.start(LOOP, None)
    wait_until(lambda: fair_pool.running() == {None: 2})

    with pytest.raises(ScriptError) as raised:
        fair_pool.call(ECHO, "main", {}, owner="flow trivial")

    assert raised.value.kind == "busy"
    assert "all 2 sandbox processes are busy (FLOWSITE_SANDBOX_PROCESSES)" in raised.value.message
    assert looping.join() == ["timeout", "timeout"]


def test_a_call_waiting_for_a_process_when_the_pool_closes_is_refused():
    pool = SandboxPool(size=1, cpu_time_limit_ms=1000, memory_limit_mb=64, queue_ms=5000)
    looping = Calls(pool)
    looping.start(LOOP, "flow looping")
    wait_until(lambda: pool.running() == {"flow looping": 1} and len(pool.pids()) == 1)
    refused: list[BaseException] = []

    def waiting_call():
        try:
            pool.call(ECHO, "main", {}, owner="flow other")
        except BaseException as exc:  # what it raised is the point
            refused.append(exc)

    waiter = threading.Thread(target=waiting_call)
    waiter.start()
    wait_until(lambda: pool.waiting() == 1)
    pool.close()
    waiter.join(timeout=5)

    assert [type(exc) for exc in refused] == [RuntimeError]
    looping.join()
