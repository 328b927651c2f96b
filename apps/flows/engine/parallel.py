"""Per-record calls of one step, up to `concurrency` at once, results in page order.

A lookup on an HTTP connection whose `concurrency` (Celigo's `http.concurrencyLevel`) is
above 1 runs its records' calls on that many worker threads; with 1 (the default) the
records go one after another on the run's thread, as they always did. Either way each
record's result, or the failure that isolates it, comes back to the run's thread in page
order, and only that thread writes the recorder and the step's statistics.

Why a thread pool per step run (one page through one step), not per run or per process:
no thread outlives the page, so a run that ends, fails or crashes leaves nothing behind
and runs share nothing; starting the threads (≤ 50, lazily, ~0.1 ms each) is small next
to the page's calls; and a process-wide pool would make one run's calls wait behind
another's, which today's runs never do.

Workers see the run through `RunContext.worker_view`: the same deadline, clock and
outbound client, but as `cancelled` the run thread's stop signal, because the run's own
check may ask the database, whose connections belong to the run's thread. The run thread
keeps checking its deadline and cancellation before each record it hands out; when it
stops (deadline, cancellation, a crash), it signals the workers, drops the calls not yet
started and waits for those under way: each is bounded by the deadline or the
connection's timeout, and gives up between retries once signalled. The run then ends as
it would have one record at a time.
"""

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from apps.flows.engine.context import RunContext

# Records handed out ahead of the oldest unfinished one, per worker: a slow record does not
# leave the other workers idle, and the run thread checks deadline and cancellation at
# least once per record handed out.
AHEAD_PER_WORKER = 2

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


def _in_parallel(
    page: list,
    ctx: RunContext,
    handle: Callable[[Any, RunContext], Any],
    isolated: type[BaseException],
    concurrency: int,
) -> Iterator[Outcome]:
    stop = threading.Event()
    worker_ctx = ctx.worker_view(stop.is_set)

    def attempt(record: Any) -> tuple[Any, BaseException | None]:
        worker_ctx.checkpoint()  # past the deadline, or stopping: not started
        try:
            return handle(record, worker_ctx), None
        except isolated as failure:
            return None, failure

    workers = min(concurrency, len(page))
    pending: deque[tuple[Any, Future]] = deque()
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"run {ctx.process_id}")
    try:
        for record in page:
            while len(pending) >= workers * AHEAD_PER_WORKER:
                oldest, future = pending.popleft()
                yield oldest, *future.result()
            ctx.checkpoint()
            pending.append((record, executor.submit(attempt, record)))
        while pending:
            oldest, future = pending.popleft()
            yield oldest, *future.result()
    finally:
        stop.set()
        executor.shutdown(wait=True, cancel_futures=True)
