"""The Redis broker transport (apps.core.redis_transport): kombu's, with one client per
channel for its plain commands instead of one built for every publish and acknowledgement.
It must still deliver, acknowledge, requeue and restore exactly as kombu's does."""

import contextlib
import time

import kombu
import pytest
import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import resolve_transport

from apps.core import redis_transport

QUEUE = kombu.Queue("jobs", routing_key="jobs")


@pytest.fixture
def broker(redis_url, monkeypatch):
    """A clean Redis database, and a count of the clients kombu builds."""
    redis.Redis.from_url(redis_url).flushdb()
    built = []
    create = kombu_redis.Channel._create_client

    def counted(channel, asynchronous=False):
        built.append(asynchronous)
        return create(channel, asynchronous=asynchronous)

    monkeypatch.setattr(kombu_redis.Channel, "_create_client", counted)
    yield redis_url, built
    redis.Redis.from_url(redis_url).flushdb()


def drain(conn, received, count, timeout=10.0):
    deadline = time.monotonic() + timeout
    while len(received) < count and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            conn.drain_events(timeout=0.5)


def test_redis_urls_use_this_transport_in_every_flowsite_process():
    for scheme in ("redis", "rediss"):
        assert resolve_transport(scheme) is redis_transport.Transport


def test_a_channel_builds_one_client_for_all_its_publishes_and_acknowledgements(broker):
    url, built = broker
    with kombu.Connection(url) as conn:
        producer = conn.Producer()
        for number in range(50):
            producer.publish(
                {"n": number}, exchange=QUEUE.exchange, routing_key="jobs", declare=[QUEUE]
            )
        published = len(built)
        received = []

        def on_message(body, message):
            received.append(body["n"])
            message.ack()

        with conn.Consumer(QUEUE, callbacks=[on_message], prefetch_count=1):
            drain(conn, received, 50)

    assert received == list(range(50))
    assert published <= 2  # kombu's own built one per publish: 50
    assert built.count(False) <= 3, built  # and two more per message taken: 150 in all
    assert redis.Redis.from_url(url).zcard("unacked_index") == 0  # every ack was applied


def test_a_requeued_message_is_delivered_again_and_an_unacknowledged_one_is_restored(broker):
    url, _ = broker
    with kombu.Connection(url) as conn:
        conn.Producer().publish(
            {"n": 1}, exchange=QUEUE.exchange, routing_key="jobs", declare=[QUEUE]
        )
        seen = []

        def requeue_first(body, message):
            seen.append(body["n"])
            if len(seen) == 1:
                message.requeue()
            else:
                message.ack()

        with conn.Consumer(QUEUE, callbacks=[requeue_first], prefetch_count=1):
            drain(conn, seen, 2)
    assert seen == [1, 1]

    with kombu.Connection(url) as conn:  # taken, never acknowledged, then the channel closed
        conn.Producer().publish(
            {"n": 2}, exchange=QUEUE.exchange, routing_key="jobs", declare=[QUEUE]
        )
        taken = []
        with conn.Consumer(
            QUEUE, callbacks=[lambda body, message: taken.append(body)], prefetch_count=1
        ):
            drain(conn, taken, 1)
    assert taken == [{"n": 2}]
    with kombu.Connection(url) as conn:
        again = []

        def on_message(body, message):
            again.append(body)
            message.ack()

        with conn.Consumer(QUEUE, callbacks=[on_message], prefetch_count=1):
            drain(conn, again, 1)
    assert again == [{"n": 2}]
