"""Appending to the invalidation log (docs/invalidation.md; the Go code is
invalidate/record.go and invalidate/log.go).

A record is::

    magic "ZHIV" | u32 CRC-32C of [8, length) | u32 length | u8 version (1)
    | u8 kind | u8 mode | u8 flags | u64 seq | i64 time_ms | u8 origin_len
    | origin | payload

An appender opens the log O_RDWR|O_APPEND|O_CREAT (0666), takes an
exclusive flock, makes sure the path still names the file it locked (the
log may have been rotated), finds the last sequence number, writes its
record with one write() and unlocks: the same steps and lock as the Go
appenders, so both interleave safely.
"""

from __future__ import annotations

import fcntl
import os
import struct
import threading
import time
from typing import Callable, Optional, Tuple

from .url import split_url
from .errors import InvalidationError

MAGIC = b"ZHIV"
VERSION = 1
HEADER_SIZE = 33
MAX_ORIGIN = 255
MAX_PAYLOAD = 64 << 10
MAX_TAG = 0xFFFF  # the longest surrogate key an entry can carry (Go: invalidate.MaxTag)
MAX_RECORD = HEADER_SIZE + MAX_ORIGIN + MAX_PAYLOAD
TAIL_WINDOW = 64 << 10

KIND_KEY = 1
KIND_PREFIX = 2
KIND_TAG = 3
KIND_ALL = 4
KIND_MARK = 0x80

HARD = 0
SOFT = 1

_head = struct.Struct("<4sIIBBBBQqB")


def _crc32c_table() -> Tuple[int, ...]:
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return tuple(t)


_T = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as Go's crc32.Checksum(b, MakeTable(Castagnoli))."""
    c = 0xFFFFFFFF
    t = _T
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


class Record:
    """One invalidation: kind KIND_KEY (payload an absolute URL),
    KIND_PREFIX (an absolute URL prefix), KIND_TAG (a surrogate key) or
    KIND_ALL (no payload); mode HARD (delete) or SOFT (mark stale)."""

    __slots__ = ("kind", "mode", "payload", "origin", "time_ms", "seq", "flags")

    def __init__(
        self, kind: int, mode: int = HARD, payload: bytes = b"", origin: str = "", time_ms: int = 0, seq: int = 0
    ) -> None:
        self.kind = kind
        self.mode = mode
        self.payload = payload
        self.origin = origin
        self.time_ms = time_ms
        self.seq = seq
        self.flags = 0

    @classmethod
    def key(cls, url: str, mode: int = HARD) -> "Record":
        return cls(KIND_KEY, mode, url.encode("utf-8"))

    @classmethod
    def prefix(cls, prefix: str, mode: int = HARD) -> "Record":
        return cls(KIND_PREFIX, mode, prefix.encode("utf-8"))

    @classmethod
    def tag(cls, tag: str, mode: int = HARD) -> "Record":
        return cls(KIND_TAG, mode, tag.encode("utf-8"))

    @classmethod
    def all(cls, mode: int = HARD) -> "Record":
        return cls(KIND_ALL, mode)

    def validate(self) -> None:
        """What Go's Record.Validate requires of a client record."""
        if self.kind not in (KIND_KEY, KIND_PREFIX, KIND_TAG, KIND_ALL) or self.mode not in (HARD, SOFT):
            raise ValueError(f"unknown kind/mode {self.kind}/{self.mode}")
        if len(self.origin.encode("utf-8")) > MAX_ORIGIN:
            raise ValueError("origin longer than 255 bytes")
        if len(self.payload) > MAX_PAYLOAD:
            raise ValueError("payload longer than 64 KiB")
        if self.kind in (KIND_KEY, KIND_PREFIX):
            scheme, host, _ = split_url(self.payload.decode("utf-8", "surrogateescape"))
            if not scheme or not (scheme[0].isascii() and scheme[0].isalpha()) or not host:
                raise ValueError(f"{self.payload!r} is not an absolute URL")
            if any(c in host for c in " \t\r\n"):
                raise ValueError(f"{self.payload!r} has no host")
        elif self.kind == KIND_TAG and not 0 < len(self.payload) <= MAX_TAG:
            raise ValueError(f"tag of {len(self.payload)} bytes (1 to {MAX_TAG})")
        elif self.kind == KIND_ALL and self.payload:
            raise ValueError('payload on an "all" record')

    def encode(self) -> bytes:
        origin = self.origin.encode("utf-8")
        n = HEADER_SIZE + len(origin) + len(self.payload)
        body = _head.pack(
            MAGIC, 0, n, VERSION, self.kind, self.mode, self.flags, self.seq, self.time_ms, len(origin)
        )
        b = bytearray(body + origin + self.payload)
        struct.pack_into("<I", b, 4, crc32c(bytes(b[8:])))
        return bytes(b)


def decode(b: bytes, off: int) -> Tuple[Optional[Tuple[int, int]], int]:
    """Decodes the record at b[off:]: ((seq, kind), length) for a valid
    record, (None, length) for one to skip whole (unknown version), (None,
    0) for garbage (resynchronise) and (None, -1) for an incomplete tail."""
    rest = len(b) - off
    if rest < 12:
        return (None, -1) if MAGIC.startswith(b[off : off + 4]) else (None, 0)
    if b[off : off + 4] != MAGIC:
        return None, 0
    n = int.from_bytes(b[off + 8 : off + 12], "little")
    if n < HEADER_SIZE or n > MAX_RECORD:
        return None, 0
    if rest < n:
        return None, -1
    if crc32c(b[off + 8 : off + n]) != int.from_bytes(b[off + 4 : off + 8], "little"):
        return None, 0
    if b[off + 12] != VERSION or HEADER_SIZE + b[off + 32] > n:
        return None, n
    return (int.from_bytes(b[off + 16 : off + 24], "little"), b[off + 13]), n


def last_seq(b: bytes) -> Tuple[int, bool]:
    """The highest sequence number of the valid records in b, skipping
    garbage and torn records, and whether any was found."""
    best = 0
    found = False
    off = 0
    while off < len(b):
        rec, n = decode(b, off)
        if n == -1:
            # An incomplete record: a torn tail if another record follows.
            nxt = b.find(MAGIC, off + 1)
            if nxt < 0:
                break
            off = nxt
            continue
        if rec is not None:
            best = max(best, rec[0])
            found = True
        if n > 0:
            off += n
            continue
        nxt = b.find(MAGIC, off + 1)
        if nxt < 0:
            break
        off = nxt
    return best, found


class InvalidationLog:
    """Appends records to the log at path; safe for use from threads."""

    def __init__(self, path: str, origin: str = "") -> None:
        if len(origin.encode("utf-8")) > MAX_ORIGIN:
            origin = origin.encode("utf-8")[:MAX_ORIGIN].decode("utf-8", "ignore")
        self.path = path
        self.origin = origin
        self._mu = threading.Lock()
        self._fd = -1
        self._id = (0, 0)
        self._off = 0  # a record boundary: the end of what we last read or wrote
        self._seq = 0  # the highest sequence number we know of

    def _lock_current(self, deadline: Optional[float]) -> int:
        """Opens the log if needed and locks it, making sure the locked file
        is the one at the path (an appender holding a rotated-away file
        reopens). Returns the file's size."""
        while True:
            if self._fd < 0:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
                st = os.fstat(fd)
                self._fd, self._id, self._off = fd, (st.st_dev, st.st_ino), 0
            backoff = 5e-6
            for i in range(1 << 30):
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() > deadline:
                        raise InvalidationError("timed out waiting for the invalidation log lock") from None
                    if i < 64:
                        time.sleep(0)
                    else:
                        time.sleep(backoff)
                        backoff = min(2 * backoff, 1e-3)
            try:
                pst = os.stat(self.path)
                if (pst.st_dev, pst.st_ino) == self._id:
                    return os.fstat(self._fd).st_size
            except FileNotFoundError:
                pass
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1

    def _last_seq(self, size: int) -> int:
        start = self._off if self._off <= size else 0
        if start == size:
            return self._seq
        frm = start
        if size - start > TAIL_WINDOW:
            start = size - TAIL_WINDOW
        while True:
            best, found = last_seq(os.pread(self._fd, size - start, start))
            if found or start == frm:
                self._off = size
                self._seq = max(self._seq, best)
                return self._seq
            start = max(frm, start - 2 * (size - start))

    def append(self, rec: Record, timeout: Optional[float] = 5.0) -> int:
        """Validates rec, gives it the next sequence number, appends it and
        returns that number."""
        if not rec.origin:
            rec.origin = self.origin
        rec.validate()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._mu:
            size = self._lock_current(deadline)
            try:
                rec.seq = self._last_seq(size) + 1
                if rec.time_ms == 0:
                    rec.time_ms = time.time_ns() // 1_000_000
                data = rec.encode()
                n = os.write(self._fd, data)  # one write on an O_APPEND descriptor
                if n != len(data):
                    self._off = 0  # a torn record of ours: rescan next time
                    raise InvalidationError(f"short write to {self.path}: {n} of {len(data)} bytes")
                self._off, self._seq = size + n, rec.seq
                return rec.seq
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._mu:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def wait_applied(applied: Callable[[], int], seq: int, timeout: Optional[float] = 5.0) -> None:
    """Waits until applied() (the cache header's inval_seq) reaches seq:
    a short spin, then sleeps from 50 µs doubling to 2 ms, as Go's
    WaitApplied. Raises InvalidationError on timeout."""
    if applied() >= seq:
        return
    start = time.monotonic()
    deadline = None if timeout is None else start + timeout
    while time.monotonic() - start < 0.005:
        if applied() >= seq:
            return
    backoff = 50e-6
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            if applied() >= seq:
                return
            raise InvalidationError(f"record {seq} not applied within {timeout}s (applied: {applied()})")
        time.sleep(backoff)  # a system call: orders the next lookup's loads after this one
        if applied() >= seq:
            return
        backoff = min(2 * backoff, 2e-3)
