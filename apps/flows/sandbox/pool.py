"""A pool of sandbox subprocesses that run builders' JavaScript (worker.py is the inside).

Why subprocesses: a script that loops, exhausts its memory or crashes QuickJS must never hang,
grow or crash the web or Celery process that asked for it. Each child enforces the CPU-time and
memory limits itself; the parent adds a wall-clock timeout (for the few things QuickJS cannot
interrupt, such as a regular expression that backtracks catastrophically) and kills and replaces
a child that overruns it, dies or answers garbage. `subprocess`, not `multiprocessing`: Celery's
prefork children are daemonic and may not start multiprocessing children.

Fairness: a call names its owner (the engine passes the flow), and one owner holds at most
`slots_per_owner` processes at a time (FLOWSITE_SCRIPT_SLOTS_PER_FLOW, by default half the pool
rounded up), so a flow whose scripts loop leaves the rest of the pool to the other flows. Calls
beyond that wait in one queue, and a freed process goes to the waiting call whose owner holds
the fewest processes (the longest-waiting first among equals): a flow that floods the queue does
not get ahead of one that calls once. A call that gets no process within `queue_ms`
(FLOWSITE_SCRIPT_QUEUE_MS) fails with kind "busy", which the run answers with 503. Calls without
an owner (syntax checks) are not capped, and take their turn in the same queue as one more owner.
The pool, and so the share, is per web or worker process.
"""

import atexit
import contextlib
import itertools
import json
import math
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from apps.flows import surrogates
from apps.flows.sandbox import protocol
from apps.flows.sandbox.results import ScriptAbort, ScriptError, ScriptResult

WORKER_MODULE = "apps.flows.sandbox.worker"
PROJECT_ROOT = Path(__file__).resolve().parents[3]
# The child gets no secrets from our environment: only what running Python itself may need.
CHILD_ENVIRONMENT = ("PATH", "PYTHONPATH", "LD_LIBRARY_PATH", "LANG", "LC_ALL", "TZ")
STARTUP_TIMEOUT_SECONDS = 15
WALL_CLOCK_SLACK_MS = 1000
READ_CHUNK = 2**20
IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


class _Overran(Exception):
    """The child did not answer before the wall-clock deadline."""


class _Died(Exception):
    """The child's pipes closed: it exited or was killed."""


class _Waiter:
    """A call waiting for a process: whose it is and when it came."""

    __slots__ = ("order", "owner")

    def __init__(self, owner: str | None, order: int):
        self.owner = owner
        self.order = order


class _Process:
    """One sandbox child and its non-blocking pipes; used by one thread at a time."""

    def __init__(self, popen: subprocess.Popen):
        self.popen = popen
        self.pid = popen.pid
        self._to_child = popen.stdin.fileno()
        self._from_child = popen.stdout.fileno()
        os.set_blocking(self._to_child, False)
        os.set_blocking(self._from_child, False)
        self._writable = select.poll()  # poll, not select: fds may exceed FD_SETSIZE
        self._writable.register(self._to_child, select.POLLOUT)
        self._readable = select.poll()
        self._readable.register(self._from_child, select.POLLIN)
        self._buffer = bytearray()

    @classmethod
    def start(cls, memory_limit_mb: int) -> "_Process":
        popen = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", WORKER_MODULE, str(os.getpid()), str(memory_limit_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=PROJECT_ROOT,
            env={name: os.environ[name] for name in CHILD_ENVIRONMENT if name in os.environ},
            # Out of our process group: a Ctrl-C meant for runserver or a worker must not
            # kill the sandbox in the middle of a call.
            start_new_session=True,
        )
        process = cls(popen)
        try:
            header, _ = process.receive(time.monotonic() + STARTUP_TIMEOUT_SECONDS)
            if header != {"ready": True}:
                raise protocol.ProtocolError(f"a greeting of {header!r}")
        except _Overran:
            problem = f"it did not report ready within {STARTUP_TIMEOUT_SECONDS} s"
        except _Died:
            problem = "it exited during start-up; its error output is in the server log"
        except protocol.ProtocolError as exc:
            problem = f"it sent {exc}"
        else:
            return process
        process.kill()
        raise ScriptError(
            f"The script sandbox could not be started: {problem} ({process.exit_description()}).",
            kind="crashed",
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def exchange(self, message: bytes, deadline: float) -> tuple[dict[str, Any], list[bytes]]:
        self._send(message, deadline)
        return self.receive(deadline)

    def receive(self, deadline: float) -> tuple[dict[str, Any], list[bytes]]:
        return protocol.decode(lambda size: self._read_exact(size, deadline))

    def kill(self) -> None:
        """SIGKILL (the child holds nothing worth a graceful exit), reap, close the pipes."""
        with contextlib.suppress(OSError):
            self.popen.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        for pipe in (self.popen.stdin, self.popen.stdout):
            with contextlib.suppress(OSError):
                pipe.close()

    def exit_description(self) -> str:
        code = self.popen.returncode
        if code is None:
            return "still running"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
        return f"exit status {code}"

    def _wait(self, poller: select.poll, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _Overran
        poller.poll(max(1, int(remaining * 1000)))

    def _send(self, message: bytes, deadline: float) -> None:
        view = memoryview(message)
        while view:
            try:
                view = view[os.write(self._to_child, view) :]
            except BlockingIOError:
                self._wait(self._writable, deadline)
            except OSError as exc:  # BrokenPipeError mostly
                raise _Died from exc

    def _read_exact(self, size: int, deadline: float) -> bytes:
        while len(self._buffer) < size:
            self._wait(self._readable, deadline)
            try:
                chunk = os.read(self._from_child, min(READ_CHUNK, max(size, 65536)))
            except BlockingIOError:
                continue
            except OSError as exc:
                raise _Died from exc
            if not chunk:
                raise _Died
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


class SandboxPool:
    """A fixed number of sandbox processes, started lazily and shared by threads.

    A caller checks a process out (waiting its turn, see the module's docstring on fairness),
    sends one request and returns the process, or replaces it when the call overran, crashed
    it or left the protocol in an unknown state. Replacements start in the background on a
    spawner thread, which lives as long as the pool: Linux delivers PR_SET_PDEATHSIG when the
    *thread* that started a child exits, and runserver's request threads are short-lived.
    """

    def __init__(
        self,
        *,
        size: int,
        cpu_time_limit_ms: int,
        memory_limit_mb: int,
        slots_per_owner: int | None = None,
        queue_ms: int = 1000,
    ):
        if slots_per_owner is None:
            slots_per_owner = math.ceil(size / 2)
        if min(size, cpu_time_limit_ms, memory_limit_mb, slots_per_owner, queue_ms) < 1:
            raise ValueError(
                "size, cpu_time_limit_ms, memory_limit_mb, slots_per_owner and queue_ms must be "
                "positive"
            )
        self.size = size
        self.cpu_time_limit_ms = cpu_time_limit_ms
        self.memory_limit_mb = memory_limit_mb
        self.slots_per_owner = min(slots_per_owner, size)
        self.queue_ms = queue_ms
        self._owner_pid = os.getpid()
        self._lock = threading.Lock()
        self._closed = False
        self._processes: set[_Process] = set()
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")
        # Each free slot is a process, a Future of one being started, or None (start on
        # demand). The condition guards the free slots, the waiting calls and the count of
        # slots each owner holds.
        self._turns = threading.Condition(threading.Lock())
        self._free: deque[_Process | Future[_Process] | None] = deque([None] * size)
        self._waiting: list[_Waiter] = []
        self._held: Counter[str | None] = Counter()
        self._arrivals = itertools.count()
        _POOLS.add(self)

    def call(
        self,
        source: str,
        function: str,
        argument: Any,
        *,
        timeout_ms: int | None = None,
        owner: str | None = None,
    ) -> ScriptResult:
        """Call the global function `function` of `source` with `argument`; return its result.

        `argument` must be JSON-compatible (TypeError or ValueError otherwise). `timeout_ms`
        (the time left before the run's deadline) can only lower the CPU-time limit, and
        bounds the wait for a process too. `owner` (the flow) is whose share of the pool the
        call takes; a call that gets no process in time raises ScriptError kind "busy".
        Each call runs in a fresh JavaScript realm: no global survives it.
        """
        limit_ms = self.cpu_time_limit_ms
        if timeout_ms is not None and timeout_ms < limit_ms:
            limit_ms = timeout_ms
            if limit_ms <= 0:
                raise ScriptError(
                    "Script was not started: no time is left before the run's deadline.",
                    kind="timeout",
                )
        if not IDENTIFIER.fullmatch(function):
            raise ScriptError(
                f"'{function}' is not a valid JavaScript function name.", kind="missing_function"
            )
        argument_json = json.dumps(argument, separators=(",", ":"), allow_nan=False)
        header, parts = self._exchange(
            {"op": "call", "function": function, "timeout_ms": limit_ms},
            [source.encode(errors="replace"), argument_json.encode()],
            limit_ms,
            owner=owner,
            wait_ms=self.queue_ms if timeout_ms is None else min(self.queue_ms, timeout_ms),
        )
        if header["ok"]:
            try:
                value = surrogates.loads(parts[0])
            except RecursionError:
                raise ScriptError(
                    "The function returned a value nested too deeply to convert.",
                    kind="invalid_return",
                    debug=header["debug"],
                ) from None
            return ScriptResult(value=value, debug=header["debug"])
        raise self._script_error(header, limit_ms)

    def check_syntax(self, source: str) -> str | None:
        """None when `source` compiles, else why not (see the module-level check_syntax)."""
        try:
            header, _ = self._exchange(
                {"op": "check"},
                [source.encode(errors="replace")],
                self.cpu_time_limit_ms,
                owner=None,
                wait_ms=self.queue_ms,
            )
        except ScriptError as exc:
            return exc.message
        return header["syntax_error"]

    def pids(self) -> list[int]:
        """The process ids of the running sandbox processes (for tests and diagnostics)."""
        with self._lock:
            return sorted(process.pid for process in self._processes if process.alive())

    def running(self) -> dict[str | None, int]:
        """How many calls each owner has in the sandbox now (for tests and diagnostics)."""
        with self._turns:
            return dict(self._held)

    def waiting(self) -> int:
        """How many calls wait for a sandbox process now (for tests and diagnostics)."""
        with self._turns:
            return len(self._waiting)

    def close(self) -> None:
        """Kill every sandbox process; calls after this raise RuntimeError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            processes, self._processes = self._processes, set()
        self._spawner.shutdown(wait=False, cancel_futures=True)
        with self._turns:
            self._turns.notify_all()  # waiting calls see the pool closed
        if os.getpid() == self._owner_pid:  # a forked copy must not kill its parent's children
            for process in processes:
                process.kill()

    def _exchange(
        self,
        header: dict[str, Any],
        parts: list[bytes],
        limit_ms: int,
        *,
        owner: str | None,
        wait_ms: int,
    ) -> tuple[dict[str, Any], list[bytes]]:
        message = protocol.encode(header, *parts)
        wall_ms = 2 * limit_ms + WALL_CLOCK_SLACK_MS
        process = self._checkout(owner, wait_ms)
        try:
            reply = process.exchange(message, time.monotonic() + wall_ms / 1000)
        except _Overran:
            self._replace(process, owner)
            raise ScriptError(
                f"Script did not finish within {wall_ms} ms of wall-clock time (twice its "
                f"CPU-time limit of {limit_ms} ms ({self._limit_source(limit_ms)}) plus "
                f"{WALL_CLOCK_SLACK_MS} ms), so its sandbox process was killed and replaced.",
                kind="timeout",
            ) from None
        except _Died:
            self._replace(process, owner)
            raise ScriptError(
                f"The script's sandbox process died ({process.exit_description()}) and was "
                f"replaced. The usual cause is a script exceeding its memory limit of "
                f"{self.memory_limit_mb} MB (FLOWSITE_SCRIPT_MEMORY_MB).",
                kind="crashed",
            ) from None
        except protocol.ProtocolError as exc:
            self._replace(process, owner)
            raise ScriptError(
                f"The script's sandbox process sent an invalid reply ({exc}) and was replaced.",
                kind="crashed",
            ) from None
        except BaseException:  # e.g. KeyboardInterrupt: the protocol state is unknown
            self._replace(process, owner)
            raise
        self._release(owner, process)
        return reply

    def _checkout(self, owner: str | None, wait_ms: int) -> _Process:
        slot = self._acquire(owner, wait_ms)
        try:
            if self._closed:
                raise RuntimeError("The script sandbox pool is closed.")
            if isinstance(slot, Future):
                return slot.result()
            if slot is not None and slot.alive():
                return slot
            if slot is not None:  # died while idle (killed from outside): replace silently
                self._discard(slot)
            return self._spawner.submit(self._start_process).result()
        except BaseException:
            self._release(owner, None)
            raise

    def _acquire(self, owner: str | None, wait_ms: int) -> _Process | Future[_Process] | None:
        """Wait for this call's turn and take a free slot, or raise ScriptError kind "busy".

        Bounded: a caller never waits past FLOWSITE_SCRIPT_QUEUE_MS, nor past its own time
        budget (which the engine derives from the run's deadline).
        """
        deadline = time.monotonic() + wait_ms / 1000
        with self._turns:
            waiter = _Waiter(owner, next(self._arrivals))
            self._waiting.append(waiter)
            try:
                while not self._closed:
                    if self._free and self._next_in_turn() is waiter:
                        self._held[owner] += 1
                        return self._free.popleft()
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise self._busy(owner, wait_ms)
                    self._turns.wait(remaining)
                raise RuntimeError("The script sandbox pool is closed.")
            finally:
                self._waiting.remove(waiter)
                # Whether it took a slot or gave up, the next in turn may have changed.
                self._turns.notify_all()

    def _next_in_turn(self) -> _Waiter | None:
        """The waiting call that gets the next free slot (called with the condition held)."""
        turn = None
        for waiter in self._waiting:
            held = self._held[waiter.owner]
            if waiter.owner is not None and held >= self.slots_per_owner:
                continue  # its owner has its share: it waits for one of its own calls to end
            if turn is None or (held, waiter.order) < turn[0]:
                turn = ((held, waiter.order), waiter)
        return None if turn is None else turn[1]

    def _release(self, owner: str | None, slot: _Process | Future[_Process] | None) -> None:
        with self._turns:
            self._free.append(slot)
            self._held[owner] -= 1
            if self._held[owner] <= 0:
                del self._held[owner]
            self._turns.notify_all()

    def _busy(self, owner: str | None, wait_ms: int) -> ScriptError:
        held = self._held[owner]
        if owner is not None and held >= self.slots_per_owner:
            why = (
                f"this flow's other calls hold its share of the {self.size} sandbox processes "
                f"({held}, FLOWSITE_SCRIPT_SLOTS_PER_FLOW)"
            )
        else:
            why = f"all {self.size} sandbox processes are busy (FLOWSITE_SANDBOX_PROCESSES)"
        bound = (
            "FLOWSITE_SCRIPT_QUEUE_MS"
            if wait_ms >= self.queue_ms
            else "the time left before the run's deadline"
        )
        return ScriptError(
            f"Script was not started: no sandbox process was free for it within {wait_ms} ms "
            f"({bound}): {why}. Retry later.",
            kind="busy",
        )

    def _start_process(self) -> _Process:
        process = _Process.start(self.memory_limit_mb)
        with self._lock:
            if not self._closed:
                self._processes.add(process)
                return process
        process.kill()
        raise RuntimeError("The script sandbox pool is closed.")

    def _discard(self, process: _Process) -> None:
        with self._lock:
            self._processes.discard(process)
        process.kill()

    def _replace(self, process: _Process, owner: str | None) -> None:
        """Kill `process` and put a replacement, starting in the background, in its slot."""
        self._discard(process)
        try:
            replacement: Future[_Process] | None = self._spawner.submit(self._start_process)
        except RuntimeError:  # closed, or the interpreter is shutting down
            replacement = None
        self._release(owner, replacement)

    def _limit_source(self, limit_ms: int) -> str:
        if limit_ms < self.cpu_time_limit_ms:
            return "the time left before the run's deadline"
        return "FLOWSITE_SCRIPT_TIMEOUT_MS"

    def _script_error(self, header: dict[str, Any], limit_ms: int) -> ScriptError:
        kind, message, line, debug = (
            header["kind"],
            header["message"],
            header["line"],
            header["debug"],
        )
        if kind == "timeout":
            message = (
                f"Script exceeded its CPU-time limit of {limit_ms} ms "
                f"({self._limit_source(limit_ms)}) and was stopped."
            )
        elif kind == "memory":
            message = (
                f"Script exceeded its memory limit of {self.memory_limit_mb} MB "
                f"(FLOWSITE_SCRIPT_MEMORY_MB) and was stopped."
            )
        elif kind == "abort":
            return ScriptAbort(
                message, status=_http_status(header["status"]), line=line, debug=debug
            )
        return ScriptError(message, kind=kind, line=line, debug=debug)


def _http_status(value: Any) -> int:
    """error(message, status) fails the run with an HTTP error status; anything else is 500."""
    if isinstance(value, int | float) and 400 <= value <= 599 and value == int(value):
        return int(value)
    return 500


_POOLS: "weakref.WeakSet[SandboxPool]" = weakref.WeakSet()
_pool: SandboxPool | None = None
_pool_lock = threading.Lock()


def get_pool() -> SandboxPool:
    """The process-wide pool, created on first use from the settings (thread-safe)."""
    global _pool
    pool = _pool
    if pool is None:
        # Imported here, not at the top: the sandbox processes import this package too, and
        # need no Django.
        from django.conf import settings

        with _pool_lock:
            if _pool is None:
                _pool = SandboxPool(
                    size=settings.FLOWSITE_SANDBOX_PROCESSES,
                    cpu_time_limit_ms=settings.FLOWSITE_SCRIPT_TIMEOUT_MS,
                    memory_limit_mb=settings.FLOWSITE_SCRIPT_MEMORY_MB,
                    slots_per_owner=settings.FLOWSITE_SCRIPT_SLOTS_PER_FLOW,
                    queue_ms=settings.FLOWSITE_SCRIPT_QUEUE_MS,
                )
            pool = _pool
    return pool


def check_syntax(source: str) -> str | None:
    """None when `source` compiles, else a message such as
    "SyntaxError: unexpected token in expression: ')' (line 3)".

    The source is compiled (never run) inside a sandbox process, so a pathological one cannot
    hurt the caller.
    """
    return get_pool().check_syntax(source)


def _close_all() -> None:
    for pool in list(_POOLS):
        pool.close()


def _forget_after_fork() -> None:
    # gunicorn --preload or Celery prefork: the child starts its own pool, and must never kill
    # (or talk to) the sandbox processes it inherited handles to.
    global _pool
    _pool = None
    _POOLS.clear()


atexit.register(_close_all)
os.register_at_fork(after_in_child=_forget_after_fork)
