"""The app counters file the sidecar exports on /metrics (docs/format.md,
"App counters"; the Go writer is shm/appcounters/publish.go).

The client counts in plain Python ints (the hit path gains nothing but the
increment); a daemon thread copies them into this process's file about
once a second, and Client.close copies them a last time.
"""

from __future__ import annotations

import atexit
import fcntl
import mmap
import os
import struct
import sys
import threading
import time
import weakref
from typing import Callable, List, Optional, Sequence

MAGIC = b"ZHAPPCTR"
MAJOR = 1
MINOR = 0
HEADER_SIZE = 64
FILE_PREFIX = "app-"
FILE_SUFFIX = ".counters"
_OFF_UPDATED = 40
_TMP_SUFFIX = ".tmp"

#: The counters of version 1.0, in file order.
NAMES = (
    "hits",
    "not_modified",
    "misses",
    "bypass_method",
    "bypass_body",
    "bypass_conditional",
    "bypass_no_cache",
    "served_bytes",
    "lookup_hits",
    "lookup_misses",
    "lookup_expired",
    "torn_retries",
    "torn",
    "overruns",
    "corrupt",
    "collisions",
    "writer_stale",
    "faults",
    "remaps",
)
COUNT = len(NAMES)

#: How often the daemon thread publishes, in seconds.
INTERVAL = 1.0

_U64 = (1 << 64) - 1


class Publisher:
    """One counters file, created locked, mapped read-write and kept locked
    for the life of the process (the sidecar tells a live process from a
    departed one by the lock)."""

    def __init__(self, directory: str, client: str = "python") -> None:
        instance = int.from_bytes(os.urandom(8), "little") | 1
        pid = os.getpid()
        self.path = os.path.join(directory, f"{FILE_PREFIX}{pid}-{instance:016x}{FILE_SUFFIX}")
        tmp = self.path + _TMP_SUFFIX
        self._lock = threading.Lock()
        self._mm: Optional[mmap.mmap] = None
        self._words: Optional[memoryview] = None
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            os.fchmod(fd, 0o644)  # whatever the umask: the sidecar runs as another user
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            size = HEADER_SIZE + 8 * COUNT
            os.ftruncate(fd, size)
            mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            name = client.encode("ascii")[:16]
            struct.pack_into(
                "<8sHHIIIQQQ16s",
                mm,
                0,
                MAGIC,
                MAJOR,
                MINOR,
                HEADER_SIZE,
                COUNT,
                pid & 0xFFFFFFFF,
                instance,
                time.time_ns() // 1_000_000,
                0,
                name,
            )
            self._mm = mm
            if sys.byteorder == "little":
                # Typed 8-byte stores: each counter is written with one
                # aligned store (the mapping is page-aligned), so the
                # sidecar never reads one half-written.
                self._words = memoryview(mm).cast("B").cast("Q")
            os.rename(tmp, self.path)
        except BaseException:
            self._release()
            os.close(fd)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        self._fd: Optional[int] = fd
        self.instance = instance

    def publish(self, values: Sequence[int], now_ms: Optional[int] = None) -> None:
        """Copies values (COUNT counters, in NAMES order) into the file, then
        the updated time. After close it does nothing."""
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        with self._lock:
            mm = self._mm
            if mm is None:
                return
            w = self._words
            base = HEADER_SIZE // 8
            if w is not None:
                for i, v in enumerate(values[:COUNT]):
                    w[base + i] = v & _U64
                w[_OFF_UPDATED // 8] = now & _U64
            else:
                for i, v in enumerate(values[:COUNT]):
                    struct.pack_into("<Q", mm, HEADER_SIZE + 8 * i, v & _U64)
                struct.pack_into("<Q", mm, _OFF_UPDATED, now & _U64)

    def _release(self) -> None:
        if self._words is not None:
            self._words.release()
            self._words = None
        if self._mm is not None:
            self._mm.close()
            self._mm = None

    def abandon(self) -> None:
        """In a forked child: drops the inherited mapping and descriptor
        without publishing (the file is the parent's; the lock stays the
        parent's)."""
        self._lock = threading.Lock()  # may have been held by another thread at fork
        self.close()

    def close(self) -> None:
        """Unmaps and closes the file, which releases the lock; the file is
        left for the sidecar to fold into its departed total."""
        with self._lock:
            self._release()
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


class Flusher:
    """Publishes collect() into a Publisher every INTERVAL seconds from a
    daemon thread, and once more at stop() or at interpreter exit. Holds
    only a weak reference to whatever collect is bound to, so an abandoned
    client is still collected."""

    def __init__(self, pub: Publisher, collect: Callable[[], List[int]]) -> None:
        self.pub = pub
        self._collect = weakref.WeakMethod(collect)  # a bound method of the client
        self._stop = threading.Event()
        self._mu = threading.Lock()
        self._stopped = False
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="zerohop-counters", daemon=True)
        self._thread.start()
        atexit.register(self.stop)

    def flush(self) -> None:
        """Publishes now (a forked child never does: the file is its
        parent's)."""
        if os.getpid() != self._pid:
            return
        f = self._collect()
        if f is not None:
            self.pub.publish(f())

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL):
            if self._collect() is None:
                break  # the client is gone
            try:
                self.flush()
            except Exception:  # noqa: BLE001 (the app must not notice)
                pass

    def abandon(self) -> None:
        """In a forked child: forgets the parent's file (no thread runs
        here) without publishing."""
        self._stopped = True
        atexit.unregister(self.stop)
        self.pub.abandon()

    def stop(self) -> None:
        """Stops the thread, publishes a last time and closes the file."""
        with self._mu:
            if self._stopped:
                return
            self._stopped = True
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(5)
        if os.getpid() == self._pid:
            try:
                self.flush()
            finally:
                self.pub.close()
        atexit.unregister(self.stop)
