"""apps/core/memory.ShortMemory: callers that miss a key at once share one read."""

import threading
import time

from apps.core.memory import ShortMemory


def race(callers: int, call) -> list:
    """`callers` threads calling call() at once; their results, or their exceptions."""
    start = threading.Barrier(callers)
    results: list = [None] * callers

    def run(index: int):
        start.wait(5)
        try:
            results[index] = call()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def slow_read(reads: list, answer):
    """A read that takes 0.2 s, so the other callers arrive while it runs; each call is
    counted in `reads`, and the n-th returns answer(n) (or raises what it raises)."""

    def read():
        reads.append(1)
        time.sleep(0.2)
        return answer(len(reads))

    return read


def test_threads_missing_a_key_at_once_share_one_read_and_get_their_own_copies():
    memory = ShortMemory(seconds=5, max_entries=8)
    reads = []
    read = slow_read(reads, lambda _: {"rows": [1, 2]})

    results = race(8, lambda: memory.remembered("view", read))
    assert len(reads) == 1
    assert all(result == {"rows": [1, 2]} for result in results)
    assert len({id(result) for result in results}) == 8  # each caller its own copy
    assert memory.remembered("view", read) == {"rows": [1, 2]}
    assert len(reads) == 1


def test_a_read_that_finds_nothing_is_shared_but_not_remembered():
    memory = ShortMemory(seconds=5, max_entries=8)
    reads = []
    read = slow_read(reads, lambda _: None)

    assert race(6, lambda: memory.remembered("unknown", read)) == [None] * 6
    assert len(reads) == 1
    memory.remembered("unknown", read)
    assert len(reads) == 2  # an unknown key is read every time


def test_an_empty_result_is_shared_as_each_caller_s_own_copy():
    memory = ShortMemory(seconds=5, max_entries=8)
    read = slow_read([], lambda _: [])  # a route that found no flow

    results = race(6, lambda: memory.remembered("route", read))
    assert results == [[]] * 6
    assert len({id(result) for result in results}) == 6


def test_when_the_shared_read_fails_each_waiting_caller_reads_for_itself():
    memory = ShortMemory(seconds=5, max_entries=8)
    reads = []

    def answer(count: int) -> str:
        if count == 1:
            raise ConnectionError("the database went away")
        return "found"

    read = slow_read(reads, answer)

    results = race(4, lambda: memory.remembered("view", read))
    assert sum(isinstance(result, ConnectionError) for result in results) == 1
    assert results.count("found") == 3
    assert len(reads) == 4


def test_a_memory_of_no_seconds_reads_every_time():
    memory = ShortMemory(seconds=0, max_entries=8)
    reads = []
    race(3, lambda: memory.remembered("view", lambda: reads.append(1) or "found"))
    assert len(reads) == 3
