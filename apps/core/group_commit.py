"""Group commit: the writes of many request threads in one transaction, each caller
answered only once its own writes are committed.

Every sync call records its run in one write transaction at its end (issue "Hot path").
With 16 request threads that was 16 writers taking the database's write lock in turn: on
SQLite each took it, wrote and committed while the others queued (py-spy showed 7 of 8
threads of a web worker waiting for it), and on PostgreSQL each commit is a flush of the
WAL to disk. Here the writes wait in one queue per process. A caller who finds nobody
committing becomes the leader: it takes every write waiting (its own first), runs them in
one transaction on its own connection and commits once, then hands the lead to the first
caller still waiting, if any, and returns. A caller who arrives while a leader commits
waits until its write is committed by a later batch or the lead is handed to it. A lone
caller is its own leader: no thread hop, no extra statement. Durability is unchanged:
nobody is answered before its writes are committed.

- A write that fails fails alone: the batch is rolled back and each of its writes is run
  again in a transaction of its own, so every caller gets its own outcome (its exception
  is raised in its thread). A batch whose transaction could not begin (SQLite's write
  lock not had within DB_LOCK_TIMEOUT_MS) fails as a whole: run alone, each write would
  wait as long again.
- A caller already inside a transaction (Execute() records in the caller's transaction, as
  do the tests' transactions) writes inline: its writes must commit or roll back with it.
- A write function must only write to the database (and may be run twice: once in a batch
  that was rolled back, once alone), and on whichever thread leads.
"""

import os
import threading
from collections import deque
from collections.abc import Callable

from django.db import connection, transaction

MAX_BATCH = 64


class _Job:
    __slots__ = ("error", "finished", "wake", "write")

    def __init__(self, write: Callable[[], None]):
        self.write = write
        self.wake = threading.Event()  # set when finished, or when handed the lead
        self.finished = False
        self.error: BaseException | None = None


class _Queue:
    def __init__(self):
        self.lock = threading.Lock()
        self.waiting: deque[_Job] = deque()
        self.leading = False
        self.commits = 0  # transactions committed (tests read it)


_queue = _Queue()


def _reset_in_child() -> None:  # a fork must not inherit a lock held by another thread
    global _queue
    _queue = _Queue()


os.register_at_fork(after_in_child=_reset_in_child)


def run(write: Callable[[], None]) -> None:
    """Run `write` (database writes only) in a committed transaction, usually shared with
    other threads' writes; return once it is committed, or raise what it raised."""
    if connection.in_atomic_block:
        with transaction.atomic():
            write()
        return
    queue = _queue
    job = _Job(write)
    with queue.lock:
        queue.waiting.append(job)
        lead = not queue.leading
        queue.leading = True
    if not lead:
        job.wake.wait()
    if not job.finished:  # leading: this job is the first one waiting
        _lead(queue)
    if job.error is not None:
        raise job.error


def _lead(queue: _Queue) -> None:
    with queue.lock:
        count = min(MAX_BATCH, len(queue.waiting))
        batch = [queue.waiting.popleft() for _ in range(count)]
    try:
        _commit(queue, batch)
    finally:
        with queue.lock:
            successor = queue.waiting[0] if queue.waiting else None
            queue.leading = successor is not None
        for job in batch:
            job.finished = True
            job.wake.set()
        if successor is not None:
            successor.wake.set()  # it leads the next batch


def _commit(queue: _Queue, batch: list[_Job]) -> None:
    began = False
    try:
        with transaction.atomic():
            began = True
            for job in batch:
                job.write()
        queue.commits += 1
        return
    except BaseException as exc:
        if len(batch) == 1:
            batch[0].error = exc
            return
        if not began:  # no write ran (SQLite's write lock never came): alone, each would wait
            for job in batch:
                job.error = _own_copy(exc)
            return
    for job in batch:  # one of them failed: each alone, so only it fails
        try:
            with transaction.atomic():
                job.write()
            queue.commits += 1
        except BaseException as exc:
            job.error = exc


def _own_copy(exc: BaseException) -> BaseException:
    """The same error for another thread to raise (one instance raised in many threads
    would share, and mix, one traceback)."""
    try:
        own = type(exc)(*exc.args)
    except Exception:  # an error class built otherwise: share the one
        return exc
    own.__cause__ = exc.__cause__
    return own


def commits() -> int:
    """How many transactions group commit has committed in this process."""
    return _queue.commits


def waiting() -> int:
    """How many writes wait to be committed in this process."""
    return len(_queue.waiting)
