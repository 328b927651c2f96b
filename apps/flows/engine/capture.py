"""Record a run's exchanges with the outside world, and answer a replay from them (flow tests).

A recording run wraps the run's ports (outbound HTTP, data tables, sub-flows) in the
`Recording*` adapters below: each call goes through to the real port and is written on the
run's `Tape`, in order, with the step that made it. A replay gives the engine the `Replay*`
adapters instead: they answer every call from the tape, never from the network or the
database, and note each call that no longer matches the recording (a changed URL or body, a
write with other data, a request the recording lacks) as a `Mismatch`.

Connection credentials never reach the tape: the engine hands the port the request a step
built, without the connection's auth and default headers (the client adds those), and the
step's own headers go through `drop_header` (secret-looking names are left out). A replay
is given the connection as it is now, so its credentials are re-injected, never replayed.
"""

import base64
import copy
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from apps.flows.engine.context import RecordsError, SubflowResult
from apps.flows.outbound.errors import OutboundError
from apps.flows.outbound.values import ConnectionConfig, HttpRequest, HttpResponse
from apps.flows.sandbox.results import ScriptError, ScriptResult

KINDS = ("exchanges", "reads", "writes", "subflows", "clocks")
# Relaxations a test may allow for its outbound requests (Flow test `relaxed`).
RELAXABLE = ("url", "query", "body")


@dataclass
class Tape:
    """What a run exchanged with the outside world, in order, within `max_bytes`.

    Past the cap nothing more is kept and `overflow` is set: a cut recording cannot be
    replayed, so it cannot become a test."""

    max_bytes: int
    exchanges: list = field(default_factory=list)
    reads: list = field(default_factory=list)
    writes: list = field(default_factory=list)
    subflows: list = field(default_factory=list)
    clocks: list = field(default_factory=list)  # per script call: its times and randoms
    size: int = 0
    overflow: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, kind: str, entry: dict) -> None:
        size = len(json.dumps(entry, default=str))
        with self._lock:
            if self.overflow:
                return
            if self.size + size > self.max_bytes:
                self.overflow = True
                return
            self.size += size
            getattr(self, kind).append(entry)

    def cut(self) -> None:
        """Keep nothing more: the recording cannot be replayed."""
        with self._lock:
            self.overflow = True

    def document(self) -> dict:
        return {kind: getattr(self, kind) for kind in KINDS}


def full_url(connection: ConnectionConfig, request: HttpRequest) -> str:
    """The URL a request goes to, as the outbound client builds it (without its checks)."""
    url = request.url
    if "://" in url[:12]:
        target = url
    elif url:
        target = f"{connection.base_uri.rstrip('/')}/{url.lstrip('/')}"
    else:
        target = connection.base_uri
    pairs = [
        (name, ("true" if item else "false") if isinstance(item, bool) else str(item))
        for name, value in (request.query or {}).items()
        for item in (value if isinstance(value, list | tuple) else [value])
        if item is not None
    ]
    if pairs:
        target += ("&" if "?" in target else "?") + urlencode(pairs, quote_via=quote)
    return target


def _body_of(request: HttpRequest) -> Any:
    if request.json is not None:
        return request.json
    if request.body is not None:
        return _text(request.body)
    return None


def _text(data: bytes) -> Any:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}


def _bytes(text: Any) -> bytes:
    if isinstance(text, dict) and "base64" in text:
        return base64.b64decode(text["base64"])
    return str(text or "").encode("utf-8")


def describe_request(
    connection: ConnectionConfig, request: HttpRequest, drop_header: Callable[[str], bool]
) -> dict:
    return {
        "method": request.method.upper(),
        "url": full_url(connection, request),
        "headers": {k: v for k, v in (request.headers or {}).items() if not drop_header(k)},
        "body": copy.deepcopy(_body_of(request)),
    }


class RecordingHttp:
    """The HTTP port of a recording run: sends through `inner`, writes each exchange."""

    def __init__(self, inner, tape: Tape, where: Callable[[], str], drop_header):
        self.inner, self.tape, self.where, self.drop_header = inner, tape, where, drop_header

    def send(self, connection: ConnectionConfig, request: HttpRequest, **options) -> HttpResponse:
        entry = {"step": self.where(), **describe_request(connection, request, self.drop_header)}
        try:
            response = self.inner.send(connection, request, **options)
        except OutboundError as error:
            entry["error"] = {
                "type": type(error).__name__,
                "message": error.message,
                "status": error.status,
                "retriable": error.retriable,
                "bodyExcerpt": error.body_excerpt or "",
            }
            self.tape.add("exchanges", entry)
            raise
        entry["response"] = {
            "status": response.status,
            "headers": {k: v for k, v in response.headers.items() if not self.drop_header(k)},
            "body": _text(response.body),
            "url": response.url,
        }
        self.tape.add("exchanges", entry)
        return response


class RecordingRecords:
    """The data tables port of a recording run."""

    def __init__(self, inner, tape: Tape, where: Callable[[], str]):
        self.inner, self.tape, self.where = inner, tape, where

    def read(self, query: dict, *, after: str | None, limit: int) -> tuple[list, str | None]:
        entry = {"step": self.where(), "query": copy.deepcopy(query), "after": after}
        try:
            records, cursor = self.inner.read(query, after=after, limit=limit)
        except RecordsError as error:
            self.tape.add("reads", {**entry, "error": str(error)})
            raise
        self.tape.add("reads", {**entry, "records": copy.deepcopy(records), "next": cursor})
        return records, cursor

    def write(self, target: dict, data: Any) -> dict:
        entry = {"step": self.where(), "target": copy.deepcopy(target), "data": copy.deepcopy(data)}
        try:
            stored = self.inner.write(target, data)
        except RecordsError as error:
            self.tape.add("writes", {**entry, "error": str(error)})
            raise
        self.tape.add("writes", {**entry, "result": copy.deepcopy(stored)})
        return stored


class RecordingSubflows:
    """The sub-flow port of a recording run."""

    def __init__(self, inner, tape: Tape, where: Callable[[], str]):
        self.inner, self.tape, self.where = inner, tape, where

    def run(self, flow_id: int, record: Any, timeout_ms: int | None) -> SubflowResult:
        result = self.inner.run(flow_id, record, timeout_ms)
        self.tape.add(
            "subflows",
            {
                "step": self.where(),
                "flowId": flow_id,
                "input": copy.deepcopy(record),
                "result": {
                    "processId": result.process_id,
                    "status": result.status,
                    "output": copy.deepcopy(result.output),
                    "statusCode": result.status_code,
                    "error": result.error,
                },
            },
        )
        return result


# A script call's clock and dice: appended to the builder's source (its line numbers stay),
# this entry point calls the builder's function with Date and Math.random wrapped, so the
# times and random numbers it used are returned with its value, and a replay gives the
# same ones back (`input.tape`). Every call has a fresh realm: nothing needs restoring.
TAPE_FUNCTION = "__flowsite_tape__"
# A script call keeps at most this many clock readings and random numbers: past it the run's
# recording is cut (it keeps nothing), rather than the readings filling the script's memory
# and failing a run that succeeds unrecorded (an outside probe).
MAX_TAPED_VALUES = 10_000
TAPE_SOURCE = """
;function __flowsite_tape__(input) {
  var times = [], randoms = [], tape = input.tape, cut = false, MAX = __MAX__;
  var timesAt = 0, randomsAt = 0;
  var RealDate = Date, realNow = Date.now, realRandom = Math.random;
  function keep(list, value) {
    if (list.length < MAX) list.push(value); else cut = true;
  }
  function now() {
    var t = tape ? (timesAt < tape.times.length ? tape.times[timesAt++] : tape.last) : realNow();
    if (t === undefined || t === null) t = realNow();
    keep(times, t);
    return t;
  }
  function FakeDate() {
    if (!(this instanceof FakeDate)) return new RealDate(now()).toString();
    if (arguments.length === 0) return new RealDate(now());
    var args = [null];
    for (var i = 0; i < arguments.length; i++) args.push(arguments[i]);
    return new (Function.prototype.bind.apply(RealDate, args))();
  }
  FakeDate.prototype = RealDate.prototype;
  FakeDate.now = now;
  FakeDate.UTC = RealDate.UTC;
  FakeDate.parse = RealDate.parse;
  Date = FakeDate;
  Math.random = function () {
    var r = tape && randomsAt < tape.randoms.length ? tape.randoms[randomsAt++] : realRandom();
    keep(randoms, r);
    return r;
  };
  var fn;
  try { fn = (0, eval)(input.fn); } catch (ignored) { fn = undefined; }
  if (typeof fn !== 'function') return {missing: true};
  var result = fn(input.arg);
  if (result instanceof Promise) {
    return result.then(function (value) {
      return {value: value, times: times, randoms: randoms, cut: cut};
    });
  }
  return {value: result, times: times, randoms: randoms, cut: cut};
}
""".replace("__MAX__", str(MAX_TAPED_VALUES))


def _taped_call(inner, source, function, argument, tape_entry, options) -> tuple[Any, dict]:
    result = inner.call(
        source + TAPE_SOURCE,
        TAPE_FUNCTION,
        {"fn": function, "arg": argument, "tape": tape_entry},
        **options,
    )
    value = result.value if isinstance(result.value, dict) else {}
    if value.get("missing"):
        raise ScriptError(
            f"The script does not define a function named '{function}'.",
            kind="missing_function",
            debug=result.debug,
        )
    return ScriptResult(value.get("value"), result.debug), value


class RecordingScripts:
    """The script port of a recording run: each call's times and random numbers are kept."""

    def __init__(self, inner, tape: Tape, where: Callable[[], str]):
        self.inner, self.tape, self.where = inner, tape, where

    def call(self, source: str, function: str, argument: Any, **options) -> ScriptResult:
        result, value = _taped_call(self.inner, source, function, argument, None, options)
        if value.get("cut"):
            self.tape.cut()
            return result
        self.tape.add(
            "clocks",
            {
                "step": self.where(),
                "times": value.get("times") or [],
                "randoms": value.get("randoms") or [],
            },
        )
        return result


# --- Replay -------------------------------------------------------------------------------


@dataclass
class Mismatch:
    """One call of the replay that the recording does not answer as it is."""

    kind: str  # request | write | read | subflow
    step: str
    problem: str  # changed | missing (the recording lacks it) | unused (no longer made)
    message: str
    expected: Any = None
    actual: Any = None

    def document(self) -> dict:
        return {
            "kind": self.kind,
            "step": self.step,
            "problem": self.problem,
            "message": self.message,
            "expected": self.expected,
            "actual": self.actual,
        }


def without(value: Any, ignored: Iterable[str], path: str = "") -> Any:
    """`value` without the ignored fields: a name drops that key at any depth, a dotted
    path (`customer.updatedAt`) only there; list items keep the path of their list."""
    ignored = ignored if isinstance(ignored, frozenset) else frozenset(ignored)
    if not ignored:
        return value
    if isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if key in ignored or where in ignored:
                continue
            kept[key] = without(item, ignored, where)
        return kept
    if isinstance(value, list):
        return [without(item, ignored, path) for item in value]
    return value


def same_json(left: Any, right: Any, wildcard: str | None = None) -> bool:
    """Equal as JSON values: Python's == takes True for 1 and False for 0, so a body that
    sent `true` where it had sent `1` passed for unchanged (an outside probe). `wildcard`,
    where `left` has it, matches any value (a value the recording had redacted)."""
    if wildcard is not None and left == wildcard:
        return True
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(
            same_json(left[k], right[k], wildcard) for k in left
        )
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(
            same_json(a, b, wildcard) for a, b in zip(left, right, strict=True)
        )
    return left == right


class _Cassette:
    """Entries of one kind, each answered at most once."""

    def __init__(self, entries: list):
        self.entries = entries
        self.used = [False] * len(entries)

    def take(self, matches: Callable[[dict], bool]) -> dict | None:
        for index, entry in enumerate(self.entries):
            if not self.used[index] and matches(entry):
                self.used[index] = True
                return entry
        return None

    def left(self) -> list[dict]:
        return [entry for entry, used in zip(self.entries, self.used, strict=True) if not used]


@dataclass
class Replay:
    """The answers of one replay and what did not match. `relaxed` may hold "url", "query"
    and "body": those parts of an outbound request may change without failing the test."""

    tape: dict
    where: Callable[[], str]
    drop_header: Callable[[str], bool]
    ignored: frozenset = frozenset()
    relaxed: frozenset = frozenset()
    # A value with the secret values the test never keeps replaced (the caller's redaction;
    # the caller scrubs the report it makes of the mismatches), for comparing; and the mark
    # such a replaced value carries, which in the recording matches any value (a bundle's
    # recording is redacted by field name too, and a secret may have been rotated since).
    conceal: Callable[[Any], Any] = lambda value: value
    redacted: str | None = None
    mismatches: list[Mismatch] = field(default_factory=list)

    def __post_init__(self):
        self.exchanges = _Cassette(self.tape.get("exchanges") or [])
        self.reads = _Cassette(self.tape.get("reads") or [])
        self.writes = _Cassette(self.tape.get("writes") or [])
        self.subflow_runs = _Cassette(self.tape.get("subflows") or [])
        self.clocks = _Cassette(self.tape.get("clocks") or [])
        self.http = _ReplayHttp(self)
        self.records = _ReplayRecords(self)
        self.subflows = _ReplaySubflows(self)

    def scripts(self, inner) -> "_ReplayScripts":
        """The script port of the replay: the real sandbox, with the recorded clock."""
        return _ReplayScripts(self, inner)

    def same(self, expected: Any, actual: Any) -> bool:
        return same_json(
            without(self.conceal(expected), self.ignored),
            without(self.conceal(actual), self.ignored),
            self.redacted,
        )

    def note(self, kind, step, problem, message, expected=None, actual=None) -> None:
        self.mismatches.append(Mismatch(kind, step, problem, message, expected, actual))

    def finish(self) -> list[Mismatch]:
        """The mismatches, with the recorded calls the replay no longer made."""
        for kind, cassette, say in (
            ("request", self.exchanges, lambda e: f"{e['method']} {e['url']}"),
            ("read", self.reads, lambda e: f"a read of {json.dumps(e['query'])}"),
            ("write", self.writes, lambda e: f"a write to {json.dumps(e['target'])}"),
            ("subflow", self.subflow_runs, lambda e: f"a run of sub-flow {e['flowId']}"),
        ):
            for entry in cassette.left():
                self.note(
                    kind,
                    entry.get("step", ""),
                    "unused",
                    f"The recording has {say(entry)}, which the flow no longer makes.",
                    expected=entry,
                )
        return self.mismatches


def _split_url(url: str) -> tuple[str, str]:
    base, _, query = url.partition("?")
    return base, query


class _ReplayHttp:
    def __init__(self, replay: Replay):
        self.replay = replay

    def _parts_match(self, entry: dict, actual: dict, relaxed: frozenset) -> bool:
        if entry["method"] != actual["method"]:
            return False
        conceal = self.replay.conceal
        (base, query), (their_base, their_query) = (
            _split_url(conceal(entry["url"])),
            _split_url(conceal(actual["url"])),
        )
        if "url" not in relaxed and base != their_base:
            return False
        if "url" not in relaxed and "query" not in relaxed and query != their_query:
            return False
        return "body" in relaxed or self.replay.same(entry["body"], actual["body"])

    def send(self, connection: ConnectionConfig, request: HttpRequest, **_options) -> HttpResponse:
        replay = self.replay
        step = replay.where()
        actual = describe_request(connection, request, replay.drop_header)
        entry = replay.exchanges.take(lambda e: self._parts_match(e, actual, frozenset()))
        if entry is None and replay.relaxed:
            entry = replay.exchanges.take(lambda e: self._parts_match(e, actual, replay.relaxed))
        named = f"{actual['method']} {actual['url']}"
        if entry is None:
            # The same step's next call of the same method: the request changed.
            entry = replay.exchanges.take(
                lambda e: e.get("step") == step and e["method"] == actual["method"]
            )
            if entry is None:
                replay.note(
                    "request",
                    step,
                    "missing",
                    f"{step}: the recording has no answer for {named}.",
                    actual=actual,
                )
                raise OutboundError(
                    f"The recording has no answer for {named} (a replay never calls out).",
                    retriable=False,
                )
            changed = [
                part
                for part, differs in (
                    ("URL", replay.conceal(entry["url"]) != replay.conceal(actual["url"])),
                    ("body", not replay.same(entry["body"], actual["body"])),
                )
                if differs
            ]
            replay.note(
                "request",
                step,
                "changed",
                f"{step}: {named} no longer matches the recorded {entry['method']} "
                f"{entry['url']} ({' and '.join(changed) or 'request'} changed).",
                expected={k: entry[k] for k in ("method", "url", "body")},
                actual={k: actual[k] for k in ("method", "url", "body")},
            )
        if "error" in entry:
            error = entry["error"]
            raise OutboundError(
                error["message"],
                retriable=bool(error.get("retriable")),
                status=error.get("status"),
                body_excerpt=error.get("bodyExcerpt") or None,
                url=entry["url"],
            )
        answer = entry["response"]
        return HttpResponse(
            status=int(answer["status"]),
            headers={str(k).lower(): v for k, v in (answer.get("headers") or {}).items()},
            body=_bytes(answer.get("body")),
            url=answer.get("url") or entry["url"],
            elapsed_ms=0.0,
        )


class _ReplayRecords:
    def __init__(self, replay: Replay):
        self.replay = replay

    def read(self, query: dict, *, after: str | None, limit: int) -> tuple[list, str | None]:
        replay, step = self.replay, self.replay.where()
        entry = replay.reads.take(
            lambda e: replay.same(e["query"], query) and e.get("after") == after
        )
        if entry is None:
            entry = replay.reads.take(lambda e: e.get("step") == step)
            if entry is None:
                replay.note(
                    "read",
                    step,
                    "missing",
                    f"{step}: the recording has no data-table read of {json.dumps(query)}.",
                    actual={"query": query, "after": after},
                )
                raise RecordsError("the recording has no answer for this read (replay).")
            replay.note(
                "read",
                step,
                "changed",
                f"{step}: the data-table read changed.",
                expected={"query": entry["query"], "after": entry.get("after")},
                actual={"query": query, "after": after},
            )
        if "error" in entry:
            raise RecordsError(entry["error"])
        return copy.deepcopy(entry.get("records") or []), entry.get("next")

    def write(self, target: dict, data: Any) -> dict:
        replay, step = self.replay, self.replay.where()
        entry = replay.writes.take(
            lambda e: (
                e.get("step") == step
                and replay.same(e["target"], target)
                and replay.same(e["data"], data)
            )
        )
        if entry is None:
            entry = replay.writes.take(
                lambda e: e.get("step") == step and replay.same(e["target"], target)
            )
            if entry is None:
                replay.note(
                    "write",
                    step,
                    "missing",
                    f"{step}: the recording has no data-table write to {json.dumps(target)} "
                    "like this one.",
                    actual={"target": target, "data": data},
                )
                raise RecordsError("the recording has no answer for this write (replay).")
            replay.note(
                "write",
                step,
                "changed",
                f"{step}: a data-table write no longer matches the recording.",
                expected={"target": entry["target"], "data": entry["data"]},
                actual={"target": target, "data": data},
            )
        if "error" in entry:
            raise RecordsError(entry["error"])
        return copy.deepcopy(entry.get("result") or {})


class _ReplaySubflows:
    def __init__(self, replay: Replay):
        self.replay = replay

    def run(self, flow_id: int, record: Any, timeout_ms: int | None) -> SubflowResult:
        replay, step = self.replay, self.replay.where()
        entry = replay.subflow_runs.take(
            lambda e: e["flowId"] == flow_id and replay.same(e["input"], record)
        )
        if entry is None:
            entry = replay.subflow_runs.take(
                lambda e: e.get("step") == step and e["flowId"] == flow_id
            )
            if entry is None:
                replay.note(
                    "subflow",
                    step,
                    "missing",
                    f"{step}: the recording has no run of sub-flow {flow_id} for this record.",
                    actual={"flowId": flow_id, "input": record},
                )
                return SubflowResult(
                    "", "failed", error="the recording has no such sub-flow run (replay)."
                )
            replay.note(
                "subflow",
                step,
                "changed",
                f"{step}: sub-flow {flow_id} was given another record.",
                expected=entry["input"],
                actual=record,
            )
        result = entry["result"]
        return SubflowResult(
            result.get("processId") or "",
            result.get("status") or "failed",
            output=copy.deepcopy(result.get("output") or []),
            status_code=result.get("statusCode"),
            error=result.get("error") or "",
        )


class _ReplayScripts:
    def __init__(self, replay: Replay, inner):
        self.replay, self.inner = replay, inner

    def call(self, source: str, function: str, argument: Any, **options) -> ScriptResult:
        step = self.replay.where()
        entry = self.replay.clocks.take(lambda e: e.get("step") == step)
        clock = None
        if entry is not None:
            times = list(entry.get("times") or [])
            clock = {"times": times, "randoms": list(entry.get("randoms") or [])}
            clock["last"] = times[-1] if times else None
        result, _ = _taped_call(self.inner, source, function, argument, clock, options)
        return result
