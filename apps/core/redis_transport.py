"""kombu's Redis transport, with one client per channel for its plain commands.

kombu 5.7's Redis channel builds a new `redis.Redis` client for every command it sends
outside the consumer's event loop (`Channel.conn_or_acquire()` calls `_create_client()`):
once per publish, and twice per message a worker takes (the unacked index on delivery,
and again on acknowledgement). A `redis.Redis` built on an existing connection pool costs
~180 µs of CPU on a slow 2-core machine (redis-py 8.1; its retry and connection settings
are copied each time): a third of a worker's delivery and acknowledgement; for a
publish the change was within the noise (BENCHMARKS.md, stage 11). The client holds no
connection of its own (each command takes one from the channel's pool and gives it back,
from any thread), so one per channel serves every such command; the consumer's
asynchronous client is kombu's, unchanged.

`register()` makes `redis://` and `rediss://` broker URLs use this transport in every
Flowsite process (web, worker, beat and tests), as apps.core.broker does for
`filesystem://`.
"""

from contextlib import contextmanager

from kombu.transport import TRANSPORT_ALIASES, redis
from kombu.utils.objects import cached_property


class Channel(redis.Channel):
    @cached_property
    def _plain_client(self):
        return self._create_client()

    @contextmanager
    def conn_or_acquire(self, client=None):
        yield client or self._plain_client


class Transport(redis.Transport):
    Channel = Channel


def register() -> None:
    """Make `redis://` and `rediss://` mean this transport in this process."""
    for scheme in ("redis", "rediss"):
        TRANSPORT_ALIASES[scheme] = "apps.core.redis_transport:Transport"
