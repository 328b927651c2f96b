"""Connection kinds other than HTTP, each provided by the app that owns its data.

An app registers its kind from its AppConfig.ready() (records: Flowsite's data tables), so
flows checks an export's or import's `records` settings without importing that app.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ConnectionKind:
    """What flows asks of a kind: the problems with an export's query settings and with an
    import's write settings ([] when they are sound)."""

    type: str  # a Connection.Type value
    query_errors: Callable[[Any], list[str]]
    write_errors: Callable[[Any], list[str]]


KINDS: dict[str, ConnectionKind] = {}


def register(kind: ConnectionKind) -> None:
    KINDS[kind.type] = kind
