"""The embedded Celery broker: kombu's filesystem transport, made safe to lose nothing.

kombu's own filesystem transport (kombu 5.7) has three ways to lose a message:

- A publisher creates the message file, then writes it; a consumer listing the folder
  can take the file in between and read it empty or half written (celery/kombu#1551).
  The worker then dies with `JSONDecodeError` and the message is gone.
- A consumer deletes the file as soon as it has read it: a message the worker has
  taken but not acknowledged exists only in the worker's memory, so SIGKILL loses it
  (`task_acks_late` does not help; on Redis the message would come back).
- It moves claimed files to the system's temporary folder, which is a copy and a
  delete (not atomic) when that folder is on another file system.

This transport keeps kombu's folder layout and file names (`<stamp>_<uuid>.<queue>.msg`),
and:

- writes each message under `.tmp/` and renames it into the folder, so a consumer sees
  whole messages only;
- claims a message by renaming it into `.claimed/<pid>-<start time>/` (one rename: only
  one consumer can win it), and deletes it only when the message is acknowledged, or
  after it has been put back (reject with requeue, or a clean shutdown);
- gives the messages claimed by a consumer process that no longer exists back to the
  queue (checked at a consumer's first poll and every `recover_interval` seconds), so a
  worker killed with SIGKILL loses nothing: Celery delivers them again, and a task must
  therefore tolerate a duplicate (runs start through a conditional claim);
- moves a file it cannot decode to `.quarantine/` and logs it, instead of crashing;
- wakes its consumer with inotify (Linux) when a message arrives, and when an
  acknowledgement frees a prefetch slot, instead of sleeping `polling_interval` between
  polls: pickup takes about a millisecond and an idle worker does not poll the folder
  (`idle_recheck`, 1 s by default, is a safety net). Without inotify it polls every
  `polling_interval` seconds as kombu does.

`register()` makes the `filesystem://` broker URL use this transport in every Flowsite
process (web, worker, beat and tests), so no writer is left that writes non-atomically.
"""

import contextlib
import ctypes
import ctypes.util
import logging
import os
import select
import threading
import time
import uuid
from queue import Empty

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

TMP, CLAIMED, QUARANTINE = ".tmp", ".claimed", ".quarantine"
# A temporary file older than this was left by a publisher that died mid-write.
STALE_TMP_SECONDS = 3600


def process_token(pid: int) -> str | None:
    """`<pid>-<start time in clock ticks>`: names one process, even after its pid is reused."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return f"{pid}-{int(fields[19])}"
    except FileNotFoundError:
        return None
    except (OSError, IndexError, ValueError):
        # No /proc (not Linux): fall back to the pid alone.
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return str(pid)


class Waker:
    """Wait until a file is moved into the folder or `kick()` is called, or a timeout."""

    IN_CLOSE_WRITE, IN_MOVED_TO = 0x08, 0x80
    IN_NONBLOCK, IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC

    def __init__(self, folder: str):
        self.inotify_fd = self._watch(folder)
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    @property
    def instant(self) -> bool:
        """Whether arrivals wake the waiter (otherwise the caller must poll)."""
        return self.inotify_fd is not None

    def _watch(self, folder: str) -> int | None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            fd = libc.inotify_init1(self.IN_NONBLOCK | self.IN_CLOEXEC)
            if fd < 0:
                return None
            mask = self.IN_MOVED_TO | self.IN_CLOSE_WRITE  # close-write: another writer
            if libc.inotify_add_watch(fd, os.fsencode(folder), mask) < 0:
                os.close(fd)
                return None
            return fd
        except (OSError, AttributeError):
            return None

    def kick(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self.write_fd, b"!")

    def wait(self, timeout: float) -> None:
        poller = select.poll()  # not select(): a busy process may have fds above 1024
        for fd in (self.read_fd, self.inotify_fd):
            if fd is not None:
                poller.register(fd, select.POLLIN)
        for fd, _ in poller.poll(max(0, int(timeout * 1000))):
            with contextlib.suppress(BlockingIOError, OSError):
                while os.read(fd, 65536):
                    pass

    def close(self) -> None:
        for fd in (self.inotify_fd, self.read_fd, self.write_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.inotify_fd = None


class Channel(filesystem.Channel):
    """Atomic publish, claim until acknowledged, recovery of a dead consumer's claims."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._claimed: dict[str, str] = {}  # delivery tag -> claimed file
        self._no_ack_queues: set[str] = set()
        self._pending: dict[str, list[str]] = {}  # queue -> names listed, oldest first
        self._next_recovery = 0.0
        self._claim_dir: str | None = None
        self._claim_pid: int | None = None

    # --- folders -----------------------------------------------------------------

    def _folder(self, *parts: str) -> str:
        path = os.path.join(self.data_folder_in, *parts)
        os.makedirs(path, exist_ok=True)
        return path

    @property
    def recover_interval(self) -> float:
        return float(self.transport_options.get("recover_interval", 30.0))

    def _my_claim_dir(self) -> str:
        pid = os.getpid()
        if self._claim_pid != pid:  # first use, or a forked child
            token = process_token(pid) or str(pid)
            self._claim_dir, self._claim_pid = self._folder(CLAIMED, token), pid
        return self._claim_dir

    # --- publish -----------------------------------------------------------------

    def _put(self, queue, payload, **kwargs):
        """Write the message under a temporary name, then rename it into the folder."""
        name = f"{time.time_ns():019d}_{uuid.uuid4().hex}.{queue}.msg"
        tmp_dir = os.path.join(self.data_folder_out, TMP)
        tmp = os.path.join(tmp_dir, f"{name}.part")
        data = dumps(payload).encode()
        try:
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                os.makedirs(tmp_dir, exist_ok=True)
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.rename(tmp, os.path.join(self.data_folder_out, name))
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            message = f"Cannot add a message to {self.data_folder_out!r}"
            raise filesystem.ChannelError(message) from exc

    # --- consume -----------------------------------------------------------------

    def _get(self, queue):
        """Claim the oldest whole message of `queue`; skip (quarantine) unreadable files."""
        if time.monotonic() >= self._next_recovery:
            self._next_recovery = time.monotonic() + self.recover_interval
            self.recover()
        suffix = f"{queue}.msg"
        pending = self._pending.get(queue)
        listed = False
        while True:
            if not pending:
                if listed:
                    break
                pending = sorted(
                    name
                    for name in os.listdir(self.data_folder_in)
                    if name.partition(".")[2] == suffix
                )
                pending.reverse()  # pop() from the end takes the oldest
                self._pending[queue] = pending
                listed = True
                continue
            payload = self._claim(queue, pending.pop())
            if payload is not None:
                return payload
        raise Empty()

    def _claim(self, queue: str, name: str) -> dict | None:
        claimed = os.path.join(self._my_claim_dir(), name)
        try:
            os.rename(os.path.join(self.data_folder_in, name), claimed)
        except FileNotFoundError:
            return None  # another consumer took it
        try:
            with open(claimed, "rb") as file:
                payload = loads(file.read())
            tag = payload["properties"]["delivery_tag"]
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot read the message {claimed!r}") from exc
        except (ValueError, TypeError, KeyError) as exc:
            self._quarantine(claimed, name, exc)
            return None
        if queue in self._no_ack_queues:
            os.unlink(claimed)
        else:
            self._claimed[tag] = claimed
        return payload

    def _quarantine(self, path: str, name: str, exc: Exception) -> None:
        target = os.path.join(self._folder(QUARANTINE), name)
        os.rename(path, target)
        logger.error(
            "Embedded broker: moved the unreadable message %s to %s (%s: %s)",
            name,
            target,
            type(exc).__name__,
            exc,
        )

    def _settle(self, delivery_tag) -> None:
        """The message is acknowledged, rejected or put back: drop the claimed copy."""
        path = self._claimed.pop(delivery_tag, None)
        if path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        kick = getattr(self.connection, "kick", None)
        if kick is not None:
            kick()  # a prefetch slot is free: the consumer may take the next message

    def basic_consume(self, queue, no_ack, callback, consumer_tag, **kwargs):
        if no_ack:
            self._no_ack_queues.add(queue)
        else:
            self._no_ack_queues.discard(queue)
        return super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)

    def basic_get(self, queue, no_ack=False, **kwargs):
        message = super().basic_get(queue, no_ack=no_ack, **kwargs)
        if message is not None and no_ack:
            self._settle(message.delivery_tag)
        return message

    def basic_ack(self, delivery_tag, multiple=False):
        super().basic_ack(delivery_tag, multiple=multiple)
        self._settle(delivery_tag)

    def basic_reject(self, delivery_tag, requeue=False):
        super().basic_reject(delivery_tag, requeue=requeue)  # requeue: _restore() puts it back
        self._settle(delivery_tag)

    def _restore(self, message):
        super()._restore(message)  # a new copy is in the queue (marked redelivered)
        self._settle(message.delivery_tag)

    def get_table(self, exchange):
        # kombu creates an exchange file, then locks and writes it: a reader can find it
        # empty for an instant. Read it again rather than fail.
        for attempt in range(20):
            try:
                return super().get_table(exchange)
            except ValueError:
                if attempt == 19:
                    raise
                time.sleep(0.005)
        return []

    # --- recovery ----------------------------------------------------------------

    def recover(self) -> int:
        """Give the messages claimed by dead consumer processes back to the queue."""
        mine = os.path.basename(self._my_claim_dir())
        root = os.path.join(self.data_folder_in, CLAIMED)
        recovered = 0
        for owner in os.listdir(root):
            pid = owner.split("-")[0]
            if owner == mine or not pid.isdigit() or process_token(int(pid)) == owner:
                continue
            folder = os.path.join(root, owner)
            with contextlib.suppress(FileNotFoundError):
                for name in os.listdir(folder):
                    with contextlib.suppress(FileNotFoundError):
                        back = os.path.join(self.data_folder_in, name)
                        os.rename(os.path.join(folder, name), back)
                        recovered += 1
                with contextlib.suppress(OSError):
                    os.rmdir(folder)
        if recovered:
            self._pending.clear()  # the recovered messages are older than those listed
            logger.warning(
                "Embedded broker: %d message(s) taken by a consumer that no longer exists "
                "are back in the queue",
                recovered,
            )
        self._remove_stale_temporary_files()
        return recovered

    def _remove_stale_temporary_files(self) -> None:
        tmp_dir = os.path.join(self.data_folder_out, TMP)
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(tmp_dir):
                with contextlib.suppress(OSError):
                    if time.time() - entry.stat().st_mtime > STALE_TMP_SECONDS:
                        os.unlink(entry.path)


class Transport(filesystem.Transport):
    """kombu's filesystem transport with the `Channel` above and wake-up on arrival."""

    Channel = Channel
    driver_name = "flowsite-filesystem"

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        self.idle_recheck = float(client.transport_options.get("idle_recheck", 1.0))
        self._waker: Waker | None = None
        self._waker_lock = threading.Lock()

    def _get_waker(self) -> Waker:
        with self._waker_lock:
            if self._waker is None:
                folder = self.client.transport_options.get("data_folder_in", "data_in")
                self._waker = Waker(folder)
            return self._waker

    def kick(self) -> None:
        if self._waker is not None:
            self._waker.kick()

    def drain_events(self, connection, timeout=None):
        waker = self._get_waker()
        pause = self.idle_recheck if waker.instant else (self.polling_interval or 0)
        started = time.monotonic()
        while True:
            try:
                self.cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                pass
            wait = pause
            if timeout is not None:
                left = timeout - (time.monotonic() - started)
                if left <= 0:
                    raise TimeoutError()
                wait = min(wait, left)
            waker.wait(wait)

    def close_connection(self, connection):
        try:
            super().close_connection(connection)
        finally:
            with self._waker_lock:
                if self._waker is not None:
                    self._waker.close()
                    self._waker = None


def register() -> None:
    """Make `filesystem://` mean this transport in this process."""
    TRANSPORT_ALIASES["filesystem"] = "apps.core.broker:Transport"
