"""Rate-limit counters on Redis: one round trip per counted request, read back as counted."""

import pytest
import redis
from django.core.cache import caches
from redis.connection import Connection

from apps.core import throttling


@pytest.fixture
def redis_cache(settings, redis_url):
    redis.Redis.from_url(redis_url).flushdb()
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url}
    }
    caches["default"].get("connect")  # the connection's handshake is not the count's
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def sent(monkeypatch):
    """What redis-py writes to its sockets, one entry per write."""
    writes = []
    original = Connection.send_packed_command

    def send_packed_command(connection, command, check_health=True):
        writes.append(command)
        return original(connection, command, check_health)

    monkeypatch.setattr(Connection, "send_packed_command", send_packed_command)
    return writes


def test_a_counted_request_is_one_round_trip_to_redis(redis_cache, sent):
    assert throttling.hit("key", "7", "2/min") is None
    assert len(sent) == 1  # SET NX and INCR together (Django's add() and incr(): three)
    assert throttling.hit("key", "7", "2/min") is None
    waited = throttling.hit("key", "7", "2/min")
    assert waited is not None
    assert 0 < waited <= 60
    assert len(sent) == 3


def test_the_counter_is_read_back_and_expires_with_its_window(redis_cache):
    assert throttling.exhausted("key", "8", "2/min") is None
    throttling.hit("key", "8", "2/min")
    assert throttling.exhausted("key", "8", "2/min") is None
    throttling.hit("key", "8", "2/min")
    assert throttling.exhausted("key", "8", "2/min") is not None  # cache.get reads it
    [name] = redis_cache.keys("*throttle:key:8:*")
    assert 0 < redis_cache.ttl(name) <= 62
    assert int(redis_cache.get(name)) == 2


def test_counts_are_kept_apart_per_caller(redis_cache):
    assert throttling.hit("key", "9", "1/min") is None
    assert throttling.hit("key", "10", "1/min") is None
    assert throttling.hit("key", "9", "1/min") is not None


def test_the_redis_client_is_made_once_not_per_request(redis_cache, monkeypatch):
    throttling.hit("key", "11", "10/min")
    made = []
    original = redis.Redis.__init__

    def init(client, *args, **kwargs):
        made.append(client)
        original(client, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "__init__", init)
    for _ in range(3):
        assert throttling.hit("key", "11", "10/min") is None
    assert made == []  # Django's own add() and incr() would have made one each


def test_a_cache_that_fails_is_left_alone_for_a_while_so_calls_do_not_each_wait(monkeypatch):
    """A Redis that stopped answering made every API call wait its socket timeout before
    the limit failed open (an outside probe: ~5 s a call)."""
    monkeypatch.setattr(throttling, "_cache_down_until", 0.0)
    asked = []

    def unreachable(key, *, timeout):
        asked.append(key)
        raise redis.exceptions.TimeoutError("Timeout reading from socket")

    monkeypatch.setattr(throttling, "_count", unreachable)

    assert throttling.hit("key", "7", "5/min") is None  # fails open
    assert throttling.hit("key", "7", "5/min") is None
    assert throttling.exhausted("key", "7", "5/min") is None
    assert len(asked) == 1  # asked once, then left alone

    monkeypatch.setattr(throttling, "_cache_down_until", 0.0)  # the pause is over
    assert throttling.hit("key", "7", "5/min") is None
    assert len(asked) == 2
