"""Per-record calls of one step, up to `concurrency` at once, results in page order.

A lookup on an HTTP connection whose `concurrency` (Celigo's `http.concurrencyLevel`) is
above 1 runs its records' calls on that many worker threads; with 1 (the default) the
records go one after another on the run's thread, as they always did. Either way each
record's result, or the failure that isolates it, comes back to the run's thread in page
order, and only that thread writes the recorder and the step's statistics.

Why threads per step run (one page through one step), not a pool per run or per process:
no thread outlives the page, so a run that ends, fails or crashes leaves nothing behind
and runs share nothing; starting them (≤ 50, ~0.1 ms each) is small next to a page's
calls; and a process-wide pool would make one run's calls wait behind another's, which
today's runs never do. The workers take the page's records in order from a shared
counter and put each outcome in its record's place; the run thread takes the outcomes in
page order (measured: ~5-8 % less overhead per record than a ThreadPoolExecutor's
future per record).

Workers see the run through `RunContext.worker_view`: the same deadline, clock and
outbound client, but as `cancelled` the run thread's stop signal, because the run's own
check may ask the database, whose connections belong to the run's thread. A worker checks
the deadline before each record it takes; the run thread checks deadline and cancellation
before each record it takes back, and every `CHECK_SECONDS` while it waits for a slow
one. When the run thread stops (deadline, cancellation, a crash), it signals the workers,
which take no further record, and waits for the calls under way: each is bounded by the
deadline or the connection's timeout, and gives up between retries once signalled. The
run then ends as it would have one record at a time.
"""

import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

from apps.flows.engine.context import RunContext

# How often the run thread, waiting for a slow record, checks deadline and cancellation.
CHECK_SECONDS = 0.25

# (record, its result, the isolated failure or None)
Outcome = tuple[Any, Any, BaseException | None]


def outcomes(
    page: list,
    ctx: RunContext,
    handle: Callable[[Any, RunContext], Any],
    *,
    isolated: type[BaseException],
    concurrency: int = 1,
) -> Iterator[Outcome]:
    """`handle(record, ctx)` for every record of `page`, in page order.

    An `isolated` exception is that record's failure, yielded in place of its result; any
    other exception (the run stops, or a defect) is raised at that record's turn.
    """
    if concurrency <= 1 or len(page) <= 1:
        for record in page:
            ctx.checkpoint()
            try:
                yield record, handle(record, ctx), None
            except isolated as failure:
                yield record, None, failure
        return
    yield from _in_parallel(page, ctx, handle, isolated, concurrency)


class _Raise:
    """A worker's exception other than a record's failure: the run thread raises it."""

    def __init__(self, exception: BaseException):
        self.exception = exception


_PENDING = object()


def _in_parallel(
    page: list,
    ctx: RunContext,
    handle: Callable[[Any, RunContext], Any],
    isolated: type[BaseException],
    concurrency: int,
) -> Iterator[Outcome]:
    stop = threading.Event()
    worker_ctx = ctx.worker_view(stop.is_set)
    taken = itertools.count()  # the next record a worker takes (next() is atomic)
    outcomes: list = [_PENDING] * len(page)  # (result, failure), or a _Raise
    ready = threading.Condition()
    awaited = [0]  # the record the run thread waits for

    def work() -> None:
        while (index := next(taken)) < len(page) and not stop.is_set():
            try:
                worker_ctx.checkpoint()  # past the deadline: not started
                outcome: Any = (handle(page[index], worker_ctx), None)
            except isolated as failure:
                outcome = (None, failure)
            except BaseException as exc:  # raised on the run's thread, at its turn
                outcome = _Raise(exc)
            outcomes[index] = outcome
            # Set before it is looked at: the run thread, holding `ready`, sets `awaited`
            # and then looks, so either it sees the outcome or it is told.
            if index == awaited[0]:
                with ready:
                    ready.notify()

    workers = [
        threading.Thread(target=work, name=f"run {ctx.process_id} call {n}", daemon=True)
        for n in range(min(concurrency, len(page)))
    ]
    for worker in workers:
        worker.start()
    try:
        for index, record in enumerate(page):
            ctx.checkpoint()
            while outcomes[index] is _PENDING:
                with ready:
                    awaited[0] = index
                    if outcomes[index] is _PENDING:
                        ready.wait(CHECK_SECONDS)
                ctx.checkpoint()  # a slow record does not hide the deadline or a cancellation
            outcome, outcomes[index] = outcomes[index], None
            if isinstance(outcome, _Raise):
                raise outcome.exception
            yield record, *outcome
    finally:
        stop.set()
        for worker in workers:
            worker.join()
