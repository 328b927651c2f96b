"""The pipe protocol between the pool and a sandbox process.

A message is a count byte N (1..MAX_PARTS), N big-endian uint32 lengths, then N parts. Part 0
is a JSON object (the header); the others are raw bytes the receiver may never need to parse:
the script source and the argument's JSON going in, the result's JSON coming out. Keeping
payloads out of the header spares a JSON re-encoding of each of them on both sides.
"""

import json
import struct
from collections.abc import Callable
from typing import Any

from apps.flows import surrogates

MAX_PARTS = 4
MAX_HEADER_BYTES = 8 * 2**20
"""Headers carry messages and up to 64 K characters of debug output (<= 6 bytes each escaped)."""
MAX_RESULT_BYTES = 32 * 2**20
"""Largest JSON result a script may return; larger ones fail with kind "invalid_return"."""
MAX_PART_BYTES = 256 * 2**20
"""Sanity bound on one part; a reply beyond it means the sandbox process is broken."""


class ProtocolError(Exception):
    """The other side sent something that is not a well-formed message."""


def encode(header: dict[str, Any], *parts: bytes) -> bytes:
    chunks = (json.dumps(header, separators=(",", ":")).encode(), *parts)
    return struct.pack(f">B{len(chunks)}I", len(chunks), *map(len, chunks)) + b"".join(chunks)


def decode(read_exact: Callable[[int], bytes]) -> tuple[dict[str, Any], list[bytes]]:
    """Read one message with `read_exact(n)`, which returns exactly n bytes or raises."""
    (count,) = read_exact(1)
    if not 1 <= count <= MAX_PARTS:
        raise ProtocolError(f"a message of {count} parts")
    lengths = struct.unpack(f">{count}I", read_exact(4 * count))
    if lengths[0] > MAX_HEADER_BYTES or any(length > MAX_PART_BYTES for length in lengths):
        raise ProtocolError(f"a message with parts of {lengths} bytes")
    try:
        header = surrogates.loads(read_exact(lengths[0]))
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"a header that is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("a header that is not a JSON object")
    return header, [read_exact(length) for length in lengths[1:]]
