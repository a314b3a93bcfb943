"""The reader of the shared cache file (docs/format.md, "Reader protocol").

A Reader maps ``cache.shm`` read-only and never writes to it. A lookup is
the seqlock snapshot of one or two buckets, one copy of the entry into
private memory, the reclaim-horizon re-check and the verification of the
copy (kind, length, position, hash, CRC-32, lengths, full key); only then
is anything returned.

Two access modes (docs/format.md, "Writing a reader in a language without
atomics or mmap"):

- ``"mmap"`` (default): shared words are read with single aligned loads
  through ``memoryview.cast``; a hit makes no system call. CPython cannot
  catch SIGBUS, so the file's size is checked with fstat when it is mapped
  and every ``recheck_interval_ms``; a file truncated by a foreign actor
  between two checks can still kill the process (the sidecar itself never
  shrinks a file: it replaces it).
- ``"pread"``: positional reads only; a truncated file gives short reads,
  never a fault. Six system calls per hit (header words, the bucket twice,
  tail before and after the copy, the entry).
"""

from __future__ import annotations

import itertools
import mmap
import os
import sys
import threading
import time
import zlib
from typing import Dict, Optional, Tuple

from . import layout as L
from ._xxh64 import xxh64
from .entry import Entry
from .errors import BadMagicError, CorruptError, NotReadyError, TruncatedError, VersionError

_M64 = 0xFFFFFFFFFFFFFFFF
_GOLDEN = 0x9E3779B97F4A7C15
_unpack_entry = L.ENTRY_HEADER.unpack_from
_crc32 = zlib.crc32
_KIND = L.KIND_ENTRY
_NO_CACHE = L.FLAG_NO_CACHE


_generations = itertools.count(1)  # numbers every _File this process opens
_NOT_FOUND: Tuple[int, int] = (-1, -1)  # a stable bucket without the tag


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class ReadStats:
    """One process's lookup statistics (the mapping is never written)."""

    __slots__ = (
        "hits",
        "misses",
        "expired",
        "torn_retries",
        "torn",
        "overruns",
        "corrupt",
        "collisions",
        "writer_stale",
        "faults",
        "remaps",
    )

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0  # every lookup that was not a hit, whatever the cause
        self.expired = 0  # found but not fresh
        self.torn_retries = 0  # bucket re-reads: the writer was mid-update
        self.torn = 0  # lookups that gave up on an unstable bucket
        self.overruns = 0  # entry reclaimed before or during the copy
        self.corrupt = 0  # slots or copies that failed verification
        self.collisions = 0  # same 64-bit hash, different key
        self.writer_stale = 0  # not served: the writer is not alive
        self.faults = 0  # the file shrank under the mapping (or vanished)
        self.remaps = 0  # a replaced file was mapped again

    def as_dict(self) -> Dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self) -> str:
        return f"ReadStats({self.as_dict()})"


class Geometry:
    """Header line 0, validated (docs/format.md, "Validating the header")."""

    __slots__ = (
        "major",
        "minor",
        "features",
        "seed",
        "bucket_log2",
        "region_size",
        "region_count",
        "index_off",
        "arena_off",
        "arena_len",
        "instance_id",
        "created_ms",
        "file_size",
        "max_key",
        "max_headers",
    )
    major: int
    minor: int
    features: int
    seed: int
    bucket_log2: int
    region_size: int
    region_count: int
    index_off: int
    arena_off: int
    arena_len: int
    instance_id: int
    created_ms: int
    file_size: int
    max_key: int
    max_headers: int

    def __init__(self, header: bytes, actual_size: int) -> None:
        if len(header) < L.HEADER_SIZE or actual_size < L.HEADER_SIZE:
            raise TruncatedError(f"{actual_size} bytes is shorter than the header")
        (
            magic,
            major,
            minor,
            header_size,
            features,
            seed,
            bucket_log2,
            slots,
            region_size,
            region_count,
            index_off,
            arena_off,
            instance_id,
            created_ms,
            file_size,
            max_key,
            max_headers,
            layout_sum,
        ) = L.LINE0.unpack_from(header, 0)
        if magic != L.MAGIC:
            raise BadMagicError("not a zerohop cache file")
        if major != L.MAJOR_VERSION:
            raise VersionError(f"file is version {major}.{minor}, this client reads {L.MAJOR_VERSION}.x")
        if xxh64(bytes(header[: L.LAYOUT_SUMMED_LEN]), 0) != layout_sum:
            raise CorruptError("header checksum mismatch")
        if (
            header_size != L.HEADER_SIZE
            or slots != L.SLOTS_PER_BUCKET
            or not 1 <= bucket_log2 <= 32
            or region_size < 4096
            or region_size % 4096
            or region_count < 4
            or index_off != L.HEADER_SIZE
            or arena_off != index_off + (L.BUCKET_SIZE << bucket_log2)
            or file_size != arena_off + region_size * region_count
        ):
            raise CorruptError("inconsistent layout")
        if actual_size < file_size:
            raise TruncatedError(f"{actual_size} bytes, header says {file_size}")
        self.major, self.minor, self.features = major, minor, features
        self.seed, self.bucket_log2 = seed, bucket_log2
        self.region_size, self.region_count = region_size, region_count
        self.index_off, self.arena_off = index_off, arena_off
        self.arena_len = region_size * region_count
        self.instance_id, self.created_ms = instance_id, created_ms
        self.file_size, self.max_key, self.max_headers = file_size, max_key, max_headers


class _File:
    """One open cache file: its descriptor, geometry and, in mmap mode, the
    read-only mapping with u32 and u64 views over it. A _File is unmapped
    and closed when the last lookup using it drops its reference, so a
    replaced file needs no grace timer and close() cannot fault a lookup in
    another thread."""

    __slots__ = ("fd", "id", "geo", "mm", "q", "i", "seed", "seed32", "mask", "closed", "gen")

    def __init__(self, path: str, use_mmap: bool) -> None:
        self.closed = True  # until fully open: __del__ must not close a foreign fd
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            st = os.fstat(fd)
            header = os.pread(fd, L.HEADER_SIZE, 0)
            geo = Geometry(header, st.st_size)
            state = int.from_bytes(header[L.OFF_STATE : L.OFF_STATE + 4], "little")
            if state == L.STATE_INIT:
                raise NotReadyError("cache file not ready (no writer has published it)")
            self.mm: Optional[mmap.mmap] = None
            self.q: Optional[memoryview] = None
            self.i: Optional[memoryview] = None
            if use_mmap:
                # Map exactly file_size bytes: nothing past it is ever touched.
                self.mm = mmap.mmap(fd, geo.file_size, mmap.MAP_SHARED, mmap.PROT_READ)
                mv = memoryview(self.mm)
                # Native-order views: one aligned load per shared word.
                self.q = mv.cast("Q")
                self.i = mv.cast("I")
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.id = (st.st_dev, st.st_ino)
        self.geo = geo
        self.seed = geo.seed
        self.seed32 = geo.seed & 0xFFFFFFFF
        self.mask = (1 << geo.bucket_log2) - 1
        self.gen = next(_generations)
        self.closed = False

    def u32(self, off: int) -> int:
        if self.i is not None:
            return int(self.i[off >> 2])
        return int.from_bytes(os.pread(self.fd, 4, off), "little")

    def u64(self, off: int) -> int:
        if self.q is not None:
            return int(self.q[off >> 3])
        return int.from_bytes(os.pread(self.fd, 8, off), "little")

    def size_ok(self) -> bool:
        """Whether the file is still at least file_size long (fstat)."""
        try:
            return os.fstat(self.fd).st_size >= self.geo.file_size
        except OSError:
            return False

    def __del__(self) -> None:
        # The last reference is gone (CPython frees it at once when no lookup
        # holds it any more): the views, then the mapping, are released with
        # this object; only the descriptor needs closing. Closing anything
        # earlier could pull the mapping or the descriptor from under a
        # lookup running in another thread.
        if not self.closed:
            self.closed = True
            try:
                os.close(self.fd)
            except OSError:
                pass


class Reader:
    """Reads the cache file in ``cache_dir``. Safe for use from several
    threads; lookups take no lock.

    ``lazy=False`` (default) raises if the file is missing or unusable;
    ``lazy=True`` misses until a usable file appears. ``offline=True``
    serves whatever the writer's state and heartbeat (tools and golden
    tests only: without a live writer, invalidations are not applied).
    """

    def __init__(
        self,
        cache_dir: str,
        *,
        mode: str = "mmap",
        max_writer_silence_ms: int = 2000,
        recheck_interval_ms: int = 100,
        offline: bool = False,
        lazy: bool = False,
    ) -> None:
        if mode not in ("mmap", "pread"):
            raise ValueError(f"mode {mode!r}: want 'mmap' or 'pread'")
        if mode == "mmap" and sys.byteorder != "little":
            mode = "pread"  # the views load in native order
        self.path = os.path.join(cache_dir, "cache.shm")
        self.mode = mode
        self.offline = offline
        self._silence = max_writer_silence_ms
        self._recheck = recheck_interval_ms
        self._lock = threading.Lock()
        self._closed = False
        self.stats = ReadStats()
        self._f: Optional[_File] = None
        self._next_check = 0
        try:
            self._f = _File(self.path, mode == "mmap")
            self._next_check = _now_ms() + recheck_interval_ms
        except (OSError, ValueError):
            if not lazy:
                raise

    # ---- health and remapping ----

    def _serving(self, f: _File, now_ms: int) -> bool:
        st = f.u32(L.OFF_STATE)
        if self.offline:
            return st != L.STATE_ABANDONED
        return st == L.STATE_LIVE and now_ms - f.u64(L.OFF_HEARTBEAT) <= self._silence

    def _check(self, now_ms: int) -> None:
        """The slow path, at most once per recheck interval: the size check
        that keeps a truncated file from faulting, and a new mapping if the
        path now holds another file (or the current one is unusable)."""
        if self._closed or not self._lock.acquire(blocking=False):
            return
        try:
            if now_ms < self._next_check:
                return
            self._next_check = now_ms + self._recheck
            f = self._f
            if f is not None and not f.size_ok():
                self.stats.faults += 1
                self._f = None  # never touch it again
                f = None
            if f is not None and self._serving(f, now_ms):
                return
            try:
                st = os.stat(self.path)
            except OSError:
                return  # vanished: miss until it comes back
            if f is not None and (st.st_dev, st.st_ino) == f.id:
                return
            try:
                nf = _File(self.path, self.mode == "mmap")
            except (OSError, ValueError):
                return
            self._f = nf
            self.stats.remaps += 1
        finally:
            self._lock.release()

    def healthy(self, now_ms: Optional[int] = None) -> bool:
        """Whether hits are being served: the writer is live and its
        heartbeat recent (or the reader is offline)."""
        now = _now_ms() if now_ms is None else now_ms
        if now >= self._next_check:
            self._check(now)
        f = self._f
        return f is not None and self._serving(f, now)

    # ---- lookups ----

    def get(self, key: bytes, now_ms: Optional[int] = None) -> Optional[Entry]:
        """The entry stored under key if it is fresh at now_ms (unix ms,
        default the wall clock), from a live writer; else None."""
        return self._get(key, _now_ms() if now_ms is None else now_ms, True)

    def get_stale(self, key: bytes, now_ms: Optional[int] = None) -> Optional[Entry]:
        """get without the freshness check: stale entries are returned too."""
        return self._get(key, _now_ms() if now_ms is None else now_ms, False)

    def _get(self, key: bytes, now_ms: int, fresh: bool) -> Optional[Entry]:
        if now_ms >= self._next_check:
            self._check(now_ms)
        f = self._f
        s = self.stats
        if f is None:
            s.misses += 1
            return None
        if f.q is None:
            return self._get_pread(f, key, now_ms, fresh)
        q = f.q
        i32 = f.i
        assert i32 is not None
        # Should the reader serve at all? (state 1 and a recent heartbeat)
        st = i32[32]  # OFF_STATE / 4
        if st != 1 or now_ms - q[40] > self._silence:  # OFF_HEARTBEAT / 8
            if not (self.offline and st != 3):
                # Not serving: the recheck (at most every recheck interval,
                # at the top of the lookup) looks for a replaced file.
                s.writer_stale += 1
                s.misses += 1
                return None
        h = xxh64(key, f.seed)
        tag = h | 1
        mask = f.mask
        i1 = h & mask
        # The common case inline: bucket b1 stable at the first try.
        b = 512 + (i1 << 4)  # u64 index of bucket i1: (4096 + 128 * i1) / 8
        sq = i32[b << 1]  # its seq
        snap: Optional[Tuple[int, int]] = None
        if sq & 1:
            snap = self._snapshot(i32, q, b, tag)
        else:
            # Scan the five slots; pos and meta come from the same snapshot
            # as the tag (meta's fresh-until is covered by nothing else).
            if q[b + 1] == tag:
                snap = (q[b + 2], q[b + 3])
            elif q[b + 4] == tag:
                snap = (q[b + 5], q[b + 6])
            elif q[b + 7] == tag:
                snap = (q[b + 8], q[b + 9])
            elif q[b + 10] == tag:
                snap = (q[b + 11], q[b + 12])
            elif q[b + 13] == tag:
                snap = (q[b + 14], q[b + 15])
            else:
                snap = _NOT_FOUND
            if i32[b << 1] != sq:
                s.torn_retries += 1
                snap = self._snapshot(i32, q, b, tag)
        if snap is _NOT_FOUND:
            i2 = (((((h << 32) | (h >> 32)) & _M64) * _GOLDEN & _M64) >> 17) & mask
            if i2 == i1:
                i2 = i1 ^ 1
            snap = self._snapshot(i32, q, 512 + (i2 << 4), tag)
        if snap is None:
            s.torn += 1
            s.misses += 1
            return None
        if snap is _NOT_FOUND:
            s.misses += 1
            return None
        pos, meta = snap
        geo = f.geo
        n = meta & 0xFFFFFFFF
        fresh_until_ms = (meta >> 32) * 1000
        if fresh and now_ms >= fresh_until_ms:
            s.expired += 1
            s.misses += 1
            return None
        tail = q[32]  # OFF_TAIL / 8
        if pos < tail:
            s.overruns += 1
            s.misses += 1
            return None
        rs = geo.region_size
        if n < 96 or n > rs or n & 7 or pos & 7 or pos % rs + n > rs or pos - tail >= geo.arena_len:
            s.corrupt += 1
            s.misses += 1
            return None
        off = geo.arena_off + pos % geo.arena_len
        assert f.mm is not None
        buf = f.mm[off : off + n]  # the one copy; from here on only buf is read
        if q[32] > pos:
            s.overruns += 1  # the region was reclaimed while we copied
            s.misses += 1
            return None
        # Verify the copy (inline: this is the hit path; _verify is the
        # same for the pread route).
        (
            kind,
            total_len,
            sm,
            _,
            epos,
            ehash,
            stored,
            expires,
            iage,
            swr,
            sie,
            status,
            flags,
            kl,
            vl,
            hl,
            bl,
            etl,
            lml,
            tgl,
            _,
        ) = _unpack_entry(buf, 0)
        if kind != _KIND or total_len != n or epos != pos or ehash != h or _crc32(memoryview(buf)[16:], f.seed32) != sm:
            s.corrupt += 1
            s.misses += 1
            return None
        k_end = 96 + kl
        v_end = k_end + vl
        e_end = v_end + etl
        l_end = e_end + lml
        t_end = l_end + tgl
        h_end = t_end + hl
        b_end = h_end + bl
        if b_end > n or n - b_end >= 8:
            s.corrupt += 1
            s.misses += 1
            return None
        if kl != len(key) or not buf.startswith(key, 96):
            s.collisions += 1
            s.misses += 1
            return None
        eff = fresh_until_ms if fresh_until_ms < expires else expires
        if fresh and (flags & _NO_CACHE or now_ms >= eff):
            s.expired += 1
            s.misses += 1
            return None
        s.hits += 1
        return Entry(
            buf,
            pos,
            h,
            stored,
            eff,
            expires,
            iage,
            swr,
            sie,
            status,
            flags,
            (k_end, v_end, e_end, l_end, t_end, h_end, b_end, b_end),
            f.gen,
        )

    def _snapshot(self, i32: memoryview, q: memoryview, b: int, tag: int) -> Optional[Tuple[int, int]]:
        """(pos, meta) of the slot holding tag in the bucket at u64 index b,
        read under its seqlock; _NOT_FOUND if the stable bucket has no such
        slot; None if the bucket never became stable (at most 16 tries: a
        writer that died mid-update leaves seq odd forever)."""
        s = self.stats
        si = b << 1
        for tries in range(L.MAX_SEQ_TRIES):
            sq = i32[si]
            if sq & 1:
                s.torn_retries += 1
                if tries > 2:
                    time.sleep(0)
                continue
            snap = _NOT_FOUND
            for j in range(b + 1, b + 16, 3):
                if q[j] == tag:
                    snap = (q[j + 1], q[j + 2])
                    break
            if i32[si] == sq:
                return snap
            s.torn_retries += 1
        return None

    def _verify(
        self,
        buf: bytes,
        n: int,
        pos: int,
        h: int,
        seed32: int,
        key: bytes,
        fresh_until_ms: int,
        now_ms: int,
        fresh: bool,
        gen: int = 0,
    ) -> Optional[Entry]:
        s = self.stats
        (
            kind,
            total_len,
            sm,
            _,
            epos,
            ehash,
            stored,
            expires,
            iage,
            swr,
            sie,
            status,
            flags,
            kl,
            vl,
            hl,
            bl,
            etl,
            lml,
            tgl,
            _,
        ) = _unpack_entry(buf, 0)
        if kind != _KIND or total_len != n or epos != pos or ehash != h or len(buf) != n:
            s.corrupt += 1
            s.misses += 1
            return None
        if _crc32(memoryview(buf)[16:], seed32) != sm:
            s.corrupt += 1
            s.misses += 1
            return None
        k_end = 96 + kl
        v_end = k_end + vl
        e_end = v_end + etl
        l_end = e_end + lml
        t_end = l_end + tgl
        h_end = t_end + hl
        b_end = h_end + bl
        if b_end > n or n - b_end >= 8:
            s.corrupt += 1
            s.misses += 1
            return None
        if kl != len(key) or not buf.startswith(key, 96):
            s.collisions += 1
            s.misses += 1
            return None
        eff = fresh_until_ms if fresh_until_ms < expires else expires
        if fresh and (flags & _NO_CACHE or now_ms >= eff):
            s.expired += 1
            s.misses += 1
            return None
        s.hits += 1
        return Entry(
            buf,
            pos,
            h,
            stored,
            eff,
            expires,
            iage,
            swr,
            sie,
            status,
            flags,
            (k_end, v_end, e_end, l_end, t_end, h_end, b_end, b_end),
            gen,
        )

    def _get_pread(self, f: _File, key: bytes, now_ms: int, fresh: bool) -> Optional[Entry]:
        """The lookup through positional reads: two equal copies of a
        bucket are a consistent snapshot; a short read is a miss."""
        s = self.stats
        fd = f.fd
        pread = os.pread
        try:
            hot = pread(fd, 200, 128)  # state .. heartbeat: header bytes [128, 328)
            if len(hot) < 200:
                raise OSError("short read")
            st = int.from_bytes(hot[0:4], "little")
            hb = int.from_bytes(hot[192:200], "little")
            if st != 1 or now_ms - hb > self._silence:
                if not (self.offline and st != 3):
                    s.writer_stale += 1
                    s.misses += 1
                    return None
            h = xxh64(key, f.seed)
            tag = h | 1
            mask = f.mask
            i1 = h & mask
            i2 = (((((h << 32) | (h >> 32)) & _M64) * _GOLDEN & _M64) >> 17) & mask
            if i2 == i1:
                i2 = i1 ^ 1
            found = False
            pos = meta = 0
            for bi in (i1, i2):
                boff = L.HEADER_SIZE + L.BUCKET_SIZE * bi
                tries = 0
                while True:
                    a = pread(fd, 128, boff)
                    b2 = pread(fd, 128, boff)
                    if len(a) == 128 and a == b2 and not a[0] & 1:
                        break
                    if len(a) < 128:
                        raise OSError("short read")
                    s.torn_retries += 1
                    tries += 1
                    if tries >= 16:
                        s.torn += 1
                        s.misses += 1
                        return None
                    if tries > 3:
                        time.sleep(0)
                found = False
                for j in range(5):
                    so = 8 + 24 * j
                    if int.from_bytes(a[so : so + 8], "little") == tag:
                        found = True
                        pos = int.from_bytes(a[so + 8 : so + 16], "little")
                        meta = int.from_bytes(a[so + 16 : so + 24], "little")
                        break
                if found:
                    break
            if not found:
                s.misses += 1
                return None
            geo = f.geo
            n = meta & 0xFFFFFFFF
            fresh_until_ms = (meta >> 32) * 1000
            if fresh and now_ms >= fresh_until_ms:
                s.expired += 1
                s.misses += 1
                return None
            tail = int.from_bytes(pread(fd, 8, L.OFF_TAIL), "little")
            if pos < tail:
                s.overruns += 1
                s.misses += 1
                return None
            rs = geo.region_size
            if n < 96 or n > rs or n & 7 or pos & 7 or pos % rs + n > rs or pos - tail >= geo.arena_len:
                s.corrupt += 1
                s.misses += 1
                return None
            buf = pread(fd, n, geo.arena_off + pos % geo.arena_len)
            if len(buf) != n:
                raise OSError("short read")
            if int.from_bytes(pread(fd, 8, L.OFF_TAIL), "little") > pos:
                s.overruns += 1
                s.misses += 1
                return None
        except OSError:
            s.faults += 1
            s.misses += 1
            self._next_check = 0
            return None
        return self._verify(buf, n, pos, h, f.seed32, key, fresh_until_ms, now_ms, fresh, f.gen)

    # ---- header words ----

    def invalidation_seq(self) -> int:
        """The sequence number of the last invalidation-log record the
        sidecar has applied (read-your-purge)."""
        f = self._f
        return 0 if f is None else f.u64(L.OFF_INVAL_SEQ)

    def writer_stats(self) -> Dict[str, int]:
        """The counters the writer keeps in the file header, with its state
        words."""
        f = self._f
        if f is None:
            return {}
        out = {name: f.u64(L.OFF_STATS + 8 * k) for k, name in enumerate(L.STAT_NAMES)}
        out.update(
            state=f.u32(L.OFF_STATE),
            adopt_gen=f.u32(L.OFF_ADOPT_GEN),
            head=f.u64(L.OFF_HEAD),
            tail=f.u64(L.OFF_TAIL),
            heartbeat_ms=f.u64(L.OFF_HEARTBEAT),
            writer_start_ms=f.u64(L.OFF_WRITER_START),
            inval_seq=f.u64(L.OFF_INVAL_SEQ),
            inval_off=f.u64(L.OFF_INVAL_OFF),
        )
        return out

    @property
    def geometry(self) -> Optional[Geometry]:
        f = self._f
        return None if f is None else f.geo

    def close(self) -> None:
        """Unmaps the file; later lookups miss."""
        with self._lock:
            self._closed = True
            self._f = None  # unmapped when the last lookup using it returns
            self._next_check = 1 << 62

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def file_id(path: str) -> Tuple[int, int]:
    st = os.stat(path)
    return (st.st_dev, st.st_ino)
