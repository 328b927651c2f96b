"""apps/core/timers.py: calls scheduled for later on one thread per process."""

import threading
import time

from apps.core import timers


def test_calls_come_in_the_order_they_are_due_and_a_cancelled_one_never():
    called: list[str] = []
    done = threading.Event()

    def call(name: str):
        def function() -> None:
            called.append(name)
            if name == "last":
                done.set()

        return function

    timers.call_later(0.15, call("last"))
    cancelled = timers.call_later(0.05, call("cancelled"))
    timers.call_later(0.1, call("second"))
    timers.call_later(0.01, call("first"))  # due before every other: wakes the thread
    cancelled.cancel()

    assert done.wait(5)
    assert called == ["first", "second", "last"]


def test_a_slow_call_delays_no_other():
    release, quick = threading.Event(), threading.Event()
    timers.call_later(0.01, lambda: release.wait(5))
    timers.call_later(0.02, quick.set)
    try:
        assert quick.wait(2)  # while the first call still waits
    finally:
        release.set()


def test_no_thread_is_started_for_a_call_cancelled_in_time():
    before = threading.active_count()
    handles = [timers.call_later(60, lambda: None) for _ in range(100)]
    for handle in handles:
        handle.cancel()
    time.sleep(0.05)
    assert threading.active_count() <= before + 1  # at most the timers thread itself
