"""What a sandboxed script call gives back: a result, or an error saying what went wrong."""

from dataclasses import dataclass
from typing import Any


@dataclass
class ScriptResult:
    value: Any
    """JSON-compatible return value of the called function (undefined -> None)."""
    debug: list[str]
    """Lines written by debug(...) / console.log(...) during the call, in order."""


def _rebuild(cls: type["ScriptError"], message: str, options: dict[str, Any]) -> "ScriptError":
    return cls(message, **options)


class ScriptError(Exception):
    """A script failed.

    `kind` is one of "error" (it threw), "syntax", "timeout", "memory", "crashed" (the sandbox
    process died), "invalid_return" (not JSON-serialisable), "missing_function"; ScriptAbort's
    is "abort".
    `message` says what happened and, for limits, which limit and which setting. `line` is the
    1-based line of the builder's source where it threw, when known; `debug` holds the lines
    logged before the failure, which are often the best clue.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        line: int | None = None,
        debug: list[str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.line = line
        self.debug = list(debug or [])

    def _options(self) -> dict[str, Any]:
        return {"kind": self.kind, "line": self.line, "debug": self.debug}

    def __reduce__(self):
        # Keyword-only arguments defeat Exception's default pickling, which Celery result
        # backends and multiprocessing rely on.
        return _rebuild, (type(self), self.message, self._options())


class ScriptAbort(ScriptError):
    """The script called error(message, status): fail the run with that HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 500,
        line: int | None = None,
        debug: list[str] | None = None,
    ):
        super().__init__(message, kind="abort", line=line, debug=debug)
        self.status = status

    def _options(self) -> dict[str, Any]:
        return {"status": self.status, "line": self.line, "debug": self.debug}
