"""Outbound sockets refused while a flow test replays (defence in depth: the replay's
ports never call out, and this makes sure nothing else in the run does).

`socket.socket.connect` is wrapped once; the wrapper refuses internet sockets only on a
thread that is replaying, so the rest of the process (other requests, the database of
another thread) is untouched. A replay runs its steps on its own thread (it sets every
connection's concurrency to 1), and opens the database connection before going offline.
"""

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection

_local = threading.local()
_lock = threading.Lock()
_installed = False
INTERNET = (socket.AF_INET, socket.AF_INET6)


class OutboundRefused(ConnectionRefusedError):
    pass


def _refusing(original):
    def connect(self, address):
        if getattr(_local, "depth", 0) and self.family in INTERNET:
            raise OutboundRefused(
                f"Outbound connection to {address!r} refused: a flow test replays offline."
            )
        return original(self, address)

    return connect


def _install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        socket.socket.connect = _refusing(socket.socket.connect)
        socket.socket.connect_ex = _refusing(socket.socket.connect_ex)
        _installed = True


def is_offline() -> bool:
    return bool(getattr(_local, "depth", 0))


@contextmanager
def offline() -> Iterator[None]:
    """No internet socket may connect on this thread inside the block."""
    _install()
    connection.ensure_connection()
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1
