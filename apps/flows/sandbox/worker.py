"""A sandbox process: runs builders' JavaScript in QuickJS for the pool in pool.py.

Started as `python -m apps.flows.sandbox.worker PARENT_PID MEMORY_MB`, it answers protocol.py
messages on stdin/stdout until stdin closes. QuickJS brings no network, filesystem or host
access (no std/os modules, no require or fetch; scripts are evaluated as plain global code, not
modules), and each context has its own runtime with the memory limit set on it. The CPU-time
limit is QuickJS's interrupt handler, re-armed with what is left of the call's budget before
every entry into JavaScript. RLIMIT_AS is the second line of defence; the pool's wall-clock
timeout is the third.

Every call gets a fresh realm: a new context with the prelude, then the builder's source, then
the call. Nothing a script leaves in its globals reaches another call, so one caller's data can
never be seen by the next (contexts used to be cached per source, and caller B could read what
caller A had left in a global). The realm for the next call (context and prelude, about two
thirds of the cost) is made while the process waits for its next request.
"""

import contextlib
import ctypes
import json
import os
import re
import resource
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import quickjs

from apps.flows.sandbox import protocol

PRELUDE = Path(__file__).with_name("prelude.js").read_text()
ENTRY_POINTS = ("__flowsite_start", "__flowsite_finish", "__flowsite_take_debug")
# The prelude is ours and small; this only bounds the time spent making a realm in advance.
PRELUDE_TIME_LIMIT_SECONDS = 1.0
ADDRESS_SPACE_HEADROOM = 256 * 2**20
PR_SET_PDEATHSIG = 1

# check_syntax compiles a source without running it by making its first statement a throw.
COMPILED = "__flowsite_compiled__"
# A leading "use strict" must stay the first statement or strict-mode errors go unnoticed.
USE_STRICT = re.compile(
    r"""\A(?:\s|//[^\n]*|/\*.*?\*/)*(["'])use strict\1(?=[ \t]*(?:;|\r?\n|//|/\*|\Z))""",
    re.DOTALL,
)
# Stack frames as QuickJS prints them: "at main (<input>:3)", "at parse (native)".
FRAME = re.compile(r"^\s*at (?P<name>.+?) \((?P<where>[^()]*)\)$")
LOCATION = re.compile(r"<input>(?::(\d+))?")
# Compile errors have a frame-less location: "at <input>:3".
COMPILE_LOCATION = re.compile(r"^\s*at <input>:(\d+)$", re.MULTILINE)
IDENTIFIER = re.compile(r"[A-Za-z_$][\w$]*")


@dataclass
class _Realm:
    """A context with the prelude evaluated, and the entry points it hid from scripts."""

    context: quickjs.Context
    start: quickjs.Object
    finish: quickjs.Object
    take_debug: quickjs.Object


@dataclass
class _Script:
    realm: _Realm
    source: str

    @property
    def context(self) -> quickjs.Context:
        return self.realm.context


def error_reply(
    kind: str,
    message: str = "",
    *,
    line: int | None = None,
    status: float | None = None,
    debug: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "ok": False,
        "kind": kind,
        "message": message,
        "line": line,
        "status": status,
        "debug": debug or [],
    }


class _Failed(Exception):
    """Ends a call with an error reply (see error_reply for the arguments)."""

    def __init__(self, kind: str, message: str = "", **details: Any):
        super().__init__(kind)
        self.reply = error_reply(kind, message, **details)


class _OutOfTime(Exception):
    """The call's CPU-time budget ran out between two entries into JavaScript."""


def limit_kind(text: str) -> str | None:
    """Which limit fired ("timeout", "memory"), judging by a QuickJS exception's text."""
    if text.startswith("InternalError: interrupted"):
        return "timeout"
    if text.startswith(("InternalError: out of memory", "null\n")):
        return "memory"
    return None


def split_exception(text: str) -> tuple[str, str]:
    """(message, stack) of a QuickJS exception's text, "<message>\\n<stack or undefined>"."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if FRAME.match(line) or COMPILE_LOCATION.match(line):
            return "\n".join(lines[:index]).strip(), "\n".join(lines[index:])
    no_stack = "\nundefined"  # what a thrown value that is not an Error has
    if text.endswith(no_stack):
        return f"Uncaught {text.removesuffix(no_stack)}", ""
    return text.strip(), ""


def declaration_line(source: str, name: str) -> int | None:
    """The line where function `name` is declared, if that is unambiguous.

    QuickJS leaves the line out of a frame when the function's body fits on one line; the throw
    is then on the line of its declaration.
    """
    if not IDENTIFIER.fullmatch(name):
        return None
    escaped = re.escape(name)
    pattern = re.compile(
        rf"\bfunction\s*\*?\s*{escaped}\s*\("
        rf"|(?<![\w$.]){escaped}\s*[=:]\s*(?:async\b\s*)?(?:function\b|\([^()]*\)\s*=>|[\w$]+\s*=>)"
        rf"|(?<![\w$.]){escaped}\s*\([^()]*\)\s*\{{"
    )
    lines = {source.count("\n", 0, match.start()) + 1 for match in pattern.finditer(source)}
    return lines.pop() if len(lines) == 1 else None


def error_line(stack: str, source: str, *, skip: int = 0) -> int | None:
    """The 1-based line of the builder's source where the error was thrown, when known.

    Frames below the worker's entry point are the builder's (natives are skipped); `skip` drops
    frames of the prelude's own functions, such as error().
    """
    frames: list[tuple[str, int | None]] = []
    for raw in stack.splitlines():
        frame = FRAME.match(raw)
        if frame is None:
            continue
        if frame["name"] == ENTRY_POINTS[0]:
            break
        location = LOCATION.fullmatch(frame["where"])
        if location is not None:
            frames.append((frame["name"], int(location[1]) if location[1] else None))
    if len(frames) <= skip:
        return None
    name, line = frames[skip]
    if line is not None:
        return line
    if "\n" not in source.rstrip("\n"):
        return 1
    return declaration_line(source, name)


class Sandbox:
    """The QuickJS side of a sandbox process: a fresh realm per call, and the two operations."""

    def __init__(self, memory_limit_mb: int):
        self.memory_limit_mb = memory_limit_mb
        self._spare: _Realm | None = None

    def handle(self, header: dict[str, Any], parts: list[bytes]) -> tuple[dict, list[bytes]]:
        if header.get("op") == "call":
            source, argument = parts
            return self.call(source, header["function"], argument, header["timeout_ms"])
        if header.get("op") == "check":
            return {"ok": True, "syntax_error": self.check(parts[0].decode())}, []
        raise protocol.ProtocolError(f"unknown request {header!r}")

    def prepare(self) -> None:
        """Make the next call's realm now, while the process waits for a request."""
        if self._spare is None:
            try:
                self._spare = self._new_realm()
            except (quickjs.JSException, MemoryError):  # the call will try again
                self._spare = None

    def forget_all(self) -> None:
        """Drop the realm made in advance (after RLIMIT_AS was reached in Python itself)."""
        self._spare = None

    def call(
        self, source: bytes, function: str, argument: bytes, timeout_ms: int
    ) -> tuple[dict, list[bytes]]:
        deadline = time.process_time() + timeout_ms / 1000
        try:
            # A fresh realm every time: the script and its globals end with this call.
            script = self._load(source.decode(), deadline)
            envelope_text, _, value_text = self._run(script, function, argument, deadline)
        except _Failed as failed:
            return failed.reply, []
        envelope = json.loads(envelope_text)
        kind, debug = envelope["kind"], envelope["debug"]
        if kind == "ok":
            value = value_text.encode()
            if len(value) > protocol.MAX_RESULT_BYTES:
                return error_reply(
                    "invalid_return",
                    f"The function returned {len(value) / 2**20:.1f} MB of JSON; "
                    f"the limit is {protocol.MAX_RESULT_BYTES // 2**20} MB.",
                    debug=debug,
                ), []
            return {"ok": True, "debug": debug}, [value]
        if kind == "missing_function":
            envelope["message"] = f"The script does not define a function named '{function}'."
        return error_reply(
            kind,
            envelope.get("message", ""),
            line=error_line(
                envelope.get("stack", ""), script.source, skip=1 if kind == "abort" else 0
            ),
            status=envelope.get("status"),
            debug=debug,
        ), []

    def check(self, source: str) -> str | None:
        problem = self._compile_error(source)
        return None if problem is None else problem[0]

    def _arm(self, context: quickjs.Context | None, deadline: float) -> None:
        remaining = deadline - time.process_time()
        if remaining <= 0:
            raise _OutOfTime
        if context is not None:
            context.set_time_limit(remaining)

    def _new_context(self) -> quickjs.Context:
        context = quickjs.Context()
        context.set_memory_limit(self.memory_limit_mb * 2**20)
        return context

    def _new_realm(self) -> _Realm:
        context = self._new_context()
        context.set_time_limit(PRELUDE_TIME_LIMIT_SECONDS)
        context.eval(PRELUDE)
        realm = _Realm(context, *(context.get(name) for name in ENTRY_POINTS))
        context.eval("".join(f"delete globalThis.{name};" for name in ENTRY_POINTS))
        return realm

    def _take_realm(self) -> _Realm:
        realm, self._spare = self._spare, None
        return realm if realm is not None else self._new_realm()

    def _load(self, source: str, deadline: float) -> _Script:
        script = None
        try:
            self._arm(None, deadline)  # out of time before anything runs
            script = _Script(self._take_realm(), source)
            self._arm(script.context, deadline)
            script.context.eval(source)
        except _OutOfTime:
            raise _Failed("timeout", debug=self._salvage_debug(script)) from None
        except quickjs.JSException as exc:
            text = str(exc)
            kind = limit_kind(text)
            if kind is not None:
                raise _Failed(kind, debug=self._salvage_debug(script)) from None
            if text.startswith("SyntaxError"):
                # A compile error, or a SyntaxError thrown at run time (JSON.parse...)?
                problem = self._compile_error(source)
                if problem is not None:
                    raise _Failed("syntax", problem[0], line=problem[1]) from None
            message, stack = split_exception(text)
            raise _Failed(
                "error",
                message,
                line=error_line(stack, source),
                debug=self._salvage_debug(script),
            ) from None
        return script

    def _run(
        self, script: _Script, function: str, argument: bytes, deadline: float
    ) -> tuple[str, str, str]:
        try:
            self._arm(script.context, deadline)
            script.realm.start(function, argument.decode())
            while True:
                self._arm(script.context, deadline)
                if not script.context.execute_pending_job():
                    break
            self._arm(script.context, deadline)
            return script.realm.finish().partition("\n")
        except _OutOfTime:
            raise _Failed("timeout", debug=self._salvage_debug(script)) from None
        except quickjs.JSException as exc:
            text = str(exc)
            kind = limit_kind(text) or "error"
            message = split_exception(text)[0] if kind == "error" else ""
            raise _Failed(kind, message, debug=self._salvage_debug(script)) from None

    def _salvage_debug(self, script: _Script | None) -> list[str]:
        """The lines logged before a failure, if the context can still hand them over."""
        if script is None:
            return []
        try:
            script.context.set_time_limit(0.1)
            return json.loads(script.realm.take_debug())
        except quickjs.JSException:
            return []

    def _compile_error(self, source: str) -> tuple[str, int | None] | None:
        """(message, line) when `source` does not compile; compiled in a throwaway context."""
        strict = USE_STRICT.match(source)
        cut = strict.end() if strict else 0
        try:
            self._new_context().eval(f'{source[:cut]};throw "{COMPILED}";{source[cut:]}')
        except quickjs.JSException as exc:
            text = str(exc)
            if text.startswith(COMPILED):
                return None
            if limit_kind(text) == "memory":
                return (
                    f"The script is too large to compile within the memory limit of "
                    f"{self.memory_limit_mb} MB (FLOWSITE_SCRIPT_MEMORY_MB).",
                    None,
                )
            message, stack = split_exception(text)
            location = COMPILE_LOCATION.search(stack)
            line = int(location[1]) if location else error_line(stack, source)
            return (f"{message} (line {line})" if line else message), line
        return None


def _die_with_parent(parent_pid: int) -> None:
    """Have Linux SIGKILL this process when the thread that started it exits."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: EOF on stdin ends us
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)


def _claim_stdio() -> tuple[BinaryIO, BinaryIO]:
    """Move the protocol off fds 0 and 1, so a stray print cannot corrupt it."""
    requests = open(os.dup(0), "rb")  # noqa: SIM115 - lives as long as the process
    responses = open(os.dup(1), "wb")  # noqa: SIM115
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return requests, responses


def _limit_resources(memory_limit_mb: int) -> None:
    """No core dumps; an address-space ceiling in case QuickJS's own accounting is bypassed."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:  # not Linux: QuickJS's limit and the pool's timeout remain
        return
    in_use = int(re.search(r"^VmSize:\s+(\d+) kB", status, re.MULTILINE)[1]) * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    ceiling = in_use + memory_limit_mb * 2**20 + ADDRESS_SPACE_HEADROOM
    if hard != resource.RLIM_INFINITY:
        ceiling = min(ceiling, hard)
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError
    return data


def _reply(stream: BinaryIO, header: dict[str, Any], *parts: bytes) -> None:
    stream.write(protocol.encode(header, *parts))
    stream.flush()


def main(argv: list[str]) -> None:
    parent_pid, memory_limit_mb = int(argv[0]), int(argv[1])
    _die_with_parent(parent_pid)
    requests, responses = _claim_stdio()
    _limit_resources(memory_limit_mb)
    sandbox = Sandbox(memory_limit_mb)
    sandbox.prepare()
    _reply(responses, {"ready": True})
    while True:
        try:
            header, parts = protocol.decode(lambda size: _read_exact(requests, size))
        except EOFError:  # the pool closed the pipe, or its process is gone
            return
        try:
            reply, reply_parts = sandbox.handle(header, parts)
        except MemoryError:  # RLIMIT_AS reached in Python itself
            sandbox.forget_all()
            reply, reply_parts = error_reply("memory"), []
        _reply(responses, reply, *reply_parts)
        sandbox.prepare()


if __name__ == "__main__":
    main(sys.argv[1:])
