"""The embedded broker (apps.core.broker): whole messages only, nothing lost to a crash."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import kombu
import pytest

from apps.core.broker import Transport
from tests.conftest import BASE_DIR, subprocess_env, wait_for

QUEUE = kombu.Queue("jobs", routing_key="jobs")


def options(folder) -> dict:
    return {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(folder.parent / "control"),
        "recover_interval": 0.2,
        "polling_interval": 0.001,  # where inotify is missing, and for kombu's own transport
    }


def connection(folder) -> kombu.Connection:
    return kombu.Connection("filesystem://", transport_options=options(folder))


def publish(folder, bodies) -> None:
    with connection(folder) as conn:
        producer = conn.Producer()
        for body in bodies:
            producer.publish(body, exchange=QUEUE.exchange, routing_key="jobs", declare=[QUEUE])


def consume(folder, count: int, *, ack=True, timeout=20.0) -> list:
    received = []
    with connection(folder) as conn:

        def on_message(body, message):
            received.append(body)
            if ack:
                message.ack()

        with conn.Consumer(QUEUE, callbacks=[on_message], prefetch_count=4):
            deadline = time.monotonic() + timeout
            while len(received) < count and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    conn.drain_events(timeout=0.5)
    return received


def test_filesystem_urls_use_the_atomic_transport(tmp_path):
    assert isinstance(connection(tmp_path).transport, Transport)


PUBLISHER = textwrap.dedent(
    """
    import sys
    import kombu
    from apps.core import broker

    broker.register()
    folder, name, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    queue = kombu.Queue("jobs", routing_key="jobs")
    with kombu.Connection("filesystem://", transport_options={
        "data_folder_in": folder, "data_folder_out": folder,
    }) as conn:
        producer = conn.Producer()
        for i in range(count):
            body = {"p": name, "i": i, "pad": "x" * size}
            producer.publish(body, exchange=queue.exchange, routing_key="jobs", declare=[queue])
    """
)


def test_concurrent_publishers_never_hand_the_consumer_a_partial_message(tmp_path):
    folder = tmp_path / "broker"
    folder.mkdir()
    publishers, per_publisher, size = 4, 400, 20_000
    received: list = []
    consumer = threading.Thread(
        target=lambda: received.extend(consume(folder, publishers * per_publisher, timeout=90))
    )
    consumer.start()
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PUBLISHER, str(folder), str(p), str(per_publisher), str(size)],
            cwd=BASE_DIR,
            env=subprocess_env(PYTHONPATH=str(BASE_DIR)),
        )
        for p in range(publishers)
    ]
    for process in processes:
        assert process.wait(timeout=90) == 0
    consumer.join()

    assert len(received) == publishers * per_publisher
    assert {(body["p"], body["i"]) for body in received} == {
        (str(p), i) for p in range(publishers) for i in range(per_publisher)
    }
    assert all(body["pad"] == "x" * size for body in received)
    assert not (folder / ".quarantine").exists()
    # Acknowledged messages leave nothing behind.
    assert [name for name in os.listdir(folder) if name.endswith(".msg")] == []
    claimed = folder / ".claimed"
    assert all(os.listdir(claimed / owner) == [] for owner in os.listdir(claimed))


def test_a_truncated_message_file_is_quarantined_and_the_consumer_goes_on(tmp_path, caplog):
    folder = tmp_path / "broker"
    folder.mkdir()
    publish(folder, [{"n": 1}])
    whole = next(name for name in os.listdir(folder) if name.endswith(".jobs.msg"))
    text = (folder / whole).read_bytes()
    # Older than the good messages, so the consumer meets it first.
    (folder / "0000000000000000001_truncated.jobs.msg").write_bytes(text[: len(text) // 2])
    (folder / "0000000000000000002_empty.jobs.msg").write_bytes(b"")
    publish(folder, [{"n": 2}])

    assert consume(folder, 2) == [{"n": 1}, {"n": 2}]
    assert sorted(os.listdir(folder / ".quarantine")) == [
        "0000000000000000001_truncated.jobs.msg",
        "0000000000000000002_empty.jobs.msg",
    ]
    assert "unreadable message" in caplog.text


CONSUMER = textwrap.dedent(
    """
    import json, sys, time
    import kombu
    from apps.core import broker

    broker.register()
    folder = sys.argv[1]
    queue = kombu.Queue("jobs", routing_key="jobs")
    with kombu.Connection("filesystem://", transport_options={
        "data_folder_in": folder, "data_folder_out": folder,
    }) as conn:
        def on_message(body, message):  # takes the message and never acknowledges it
            print(json.dumps(body), flush=True)
        with conn.Consumer(queue, callbacks=[on_message], prefetch_count=1):
            while True:
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    pass
    """
)


def test_messages_taken_by_a_killed_consumer_go_back_to_the_queue(tmp_path):
    folder = tmp_path / "broker"
    folder.mkdir()
    publish(folder, [{"n": 1}, {"n": 2}])
    holder = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, str(folder)],
        cwd=BASE_DIR,
        env=subprocess_env(PYTHONPATH=str(BASE_DIR)),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert json.loads(holder.stdout.readline()) == {"n": 1}
        # Taken, not acknowledged: it is out of the queue but kept on disk.
        assert [n for n in os.listdir(folder) if n.endswith(".msg")] != []  # {"n": 2}
        held = [
            n
            for owner in os.listdir(folder / ".claimed")
            for n in os.listdir(folder / ".claimed" / owner)
        ]
        assert len(held) == 1
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()

    received = consume(folder, 2)
    assert sorted(body["n"] for body in received) == [1, 2]
    wait_for(
        lambda: all(
            not os.listdir(folder / ".claimed" / o) for o in os.listdir(folder / ".claimed")
        ),
        timeout=5,
        message="the claimed copies to be settled",
    )


def test_a_rejected_message_is_requeued_and_a_consumer_that_stops_cleanly_gives_back_its_own(
    tmp_path,
):
    folder = tmp_path / "broker"
    folder.mkdir()
    publish(folder, [{"n": 1}])
    with connection(folder) as conn:
        channel = conn.default_channel
        message = channel.basic_get("jobs")
        assert message.payload == {"n": 1}
        message.reject(requeue=True)
        again = channel.basic_get("jobs")
        assert again.payload == {"n": 1}
        # Not acknowledged when the connection closes: kombu puts it back.
    assert consume(folder, 1) == [{"n": 1}]
    assert [n for n in os.listdir(folder) if n.endswith(".msg")] == []


@pytest.mark.services
def test_a_celery_worker_survives_a_flood_of_concurrent_publishes(
    start_worker, embedded_broker, db
):
    """The failure of celery/kombu#1551 through a real worker: many processes publishing
    while it consumes. With kombu's own transport the worker died with JSONDecodeError."""
    _client, env = embedded_broker
    folder = env["FLOWSITE_VAR_DIR"] + "/broker"
    # A message file cut short (as kombu's own transport could leave one to be read).
    broken = "0000000000000000001_broken.celery.msg"
    (Path(folder) / broken).write_bytes(b'{"body": "eyJ')
    worker = start_worker(**env)
    publisher = textwrap.dedent(
        """
        import sys
        from celery import Celery
        from apps.core import broker
        broker.register()
        app = Celery(broker="filesystem://")
        app.conf.broker_transport_options = {
            "data_folder_in": sys.argv[1], "data_folder_out": sys.argv[1]}
        for i in range(150):
            app.send_task("flowsite.ping", args=["x" * 5000])
        """
    )
    publishers = [
        subprocess.Popen(
            [sys.executable, "-c", publisher, folder],
            cwd=BASE_DIR,
            env=subprocess_env(PYTHONPATH=str(BASE_DIR)),
        )
        for _ in range(4)
    ]
    for process in publishers:
        assert process.wait(timeout=60) == 0

    def drained():
        assert worker.process.poll() is None, worker.log()
        return not [n for n in os.listdir(folder) if n.endswith(".msg")]

    wait_for(drained, timeout=60, message="the worker to take every message")
    assert worker.process.poll() is None
    assert "Unrecoverable error" not in worker.log()
    assert os.listdir(Path(folder) / ".quarantine") == [broken]
    assert f"moved the unreadable message {broken}" in worker.log()
    assert worker.log().count("flowsite.ping") >= 600
