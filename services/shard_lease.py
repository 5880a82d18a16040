"""Share one on-disk Edge shard between processes: the UI, a worker, a command.

An Edge shard can be open in one process at a time (its write-ahead log is
locked). Every process that uses the store takes a lease on a shard: an
exclusive file lock, held while the shard is open. The holder keeps the shard
open between operations, so a busy process pays the opening cost once; when
another process asks for it (a `waiting.PID` marker beside the lock) the holder
closes the shard after its current operation, and a background thread hands
over a shard that sits idle. Operations of both processes interleave; each
sees the other's writes, because a shard is flushed when it is closed.
"""

import fcntl
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from services.errors import StoreUnavailableError

LOCK_FILE = "lease.lock"
WAITING_PREFIX = "waiting."
POLL_SECONDS = 0.05


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def others_waiting(folder: Path) -> bool:
    """Whether a live process other than this one waits for the shard in `folder`."""
    for marker in folder.glob(f"{WAITING_PREFIX}*"):
        pid = int(marker.name.removeprefix(WAITING_PREFIX) or 0)
        if pid == os.getpid():
            continue
        if _alive(pid):
            return True
        marker.unlink(missing_ok=True)  # left by a process that died waiting
    return False


class ShardLease:
    """This process's hold on one shard; `use()` opens it when needed."""

    def __init__(
        self,
        folder: Path,
        opener: Callable[[], Any],
        *,
        wait_seconds: float,
    ) -> None:
        self.folder = folder
        self._opener = opener
        self._wait_seconds = wait_seconds
        self._guard = threading.RLock()
        self._lock_file: IO[bytes] | None = None
        self._shard: Any = None

    @property
    def is_open(self) -> bool:
        return self._shard is not None

    @contextmanager
    def use(self, opener: Callable[[], Any] | None = None) -> Iterator[Any]:
        """The open shard, for one operation; handed over afterwards if someone waits.

        `opener` replaces the usual one when the shard is not open yet (to create it).
        """
        with self._guard:
            if self._shard is None:
                self._acquire()
                try:
                    self._shard = (opener or self._opener)()
                except BaseException:
                    self.release()
                    raise
            try:
                yield self._shard
            finally:
                if others_waiting(self.folder):
                    self.release()

    def release(self) -> None:
        """Close the shard (flushing it) and let other processes have it."""
        with self._guard:
            if self._shard is not None:
                shard, self._shard = self._shard, None
                shard.close()
            if self._lock_file is not None:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
                self._lock_file.close()
                self._lock_file = None

    def remove(self, folder: Path) -> None:
        """Delete the shard's files while holding the lease, then let go."""
        with self._guard:
            if self._lock_file is None:
                self._acquire()
            if self._shard is not None:
                shard, self._shard = self._shard, None
                shard.close()
            shutil.rmtree(folder, ignore_errors=True)
            self.release()

    def release_if_wanted(self) -> None:
        """Hand the shard over when it is idle and another process waits for it."""
        if not self._guard.acquire(blocking=False):
            return  # in use right now; `use()` hands it over when it finishes
        try:
            if self._shard is not None and others_waiting(self.folder):
                self.release()
        finally:
            self._guard.release()

    def _acquire(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        stream = (self.folder / LOCK_FILE).open("ab")
        if self._try_lock(stream):
            self._lock_file = stream
            return
        marker = self.folder / f"{WAITING_PREFIX}{os.getpid()}"
        marker.touch()
        deadline = time.monotonic() + self._wait_seconds
        try:
            while not self._try_lock(stream):
                if time.monotonic() > deadline:
                    stream.close()
                    raise StoreUnavailableError(
                        f"The store's collection in {self.folder} stayed busy in another "
                        f"process for {self._wait_seconds:.0f} s. Try again when that work "
                        "has finished, or run a Qdrant server (VITRINE_QDRANT_URL) for heavy "
                        "concurrent use."
                    )
                time.sleep(POLL_SECONDS)
        finally:
            marker.unlink(missing_ok=True)
        self._lock_file = stream

    @staticmethod
    def _try_lock(stream: IO[bytes]) -> bool:
        try:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
