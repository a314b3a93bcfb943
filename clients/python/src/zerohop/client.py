"""The app-side client: which requests are answered from the mapping, and
how (docs/format.md, "Answering a request"; clients/go/zerohop/transport.go).

Client.serve is HTTP-library neutral: the adapters in zerohop.adapters
turn its CachedResponse into a requests, httpx or urllib3 response, and send
whatever it returns None for to the sidecar.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import weakref
from email.utils import parsedate_to_datetime
from typing import Dict, List, Optional, Sequence, Tuple, Union

from . import counters as _counters
from .entry import Entry
from .invalidate import HARD, SOFT, InvalidationLog, Record, wait_applied
from .key import GetValues, StrOrBytes, header_getter, primary_key, vary_key
from .layout import FLAG_AUTH_SHARED, FLAG_HEADERS_ONLY, FLAG_VARY_INDEX
from .reader import Reader
from .url import split_url

#: The cache's name in Cache-Status header fields (RFC 9211).
CACHE_NAME = "zerohop"
#: The sidecar's default listen address.
DEFAULT_SIDECAR = "127.0.0.1:8089"
#: The default cache directory (the shared volume's mount point).
DEFAULT_CACHE_DIR = "/var/run/zerohop"

HeaderItems = Sequence[Tuple[str, str]]


class CachedResponse:
    """A response answered from the shared cache."""

    __slots__ = ("status", "headers", "body", "entry")

    def __init__(self, status: int, headers: List[Tuple[str, str]], body: bytes, entry: Entry) -> None:
        self.status = status
        self.headers = headers  # stored fields in order, then Age and Cache-Status
        self.body = body
        self.entry = entry

    def header(self, name: str) -> Optional[str]:
        ln = name.lower()
        for n, v in self.headers:
            if n.lower() == ln:
                return v
        return None

    def __repr__(self) -> str:
        return f"<zerohop.CachedResponse {self.status} {len(self.body)}B>"


class _Request:
    """What the client needs of a request's header fields, gathered in one
    pass: the request directives and the fields by lower-case name."""

    __slots__ = ("max_age", "min_fresh", "fields")

    def __init__(self) -> None:
        self.max_age = -1
        self.min_fresh = 0
        self.fields: Dict[str, List[str]] = {}


def _values(headers: HeaderItems, name: str) -> List[str]:
    ln = name.lower()
    return [v for n, v in headers if n.lower() == ln]


def _has_token(line: str, token: str) -> bool:
    return any(p.strip().lower() == token for p in line.split(","))


_INELIGIBLE = ("range", "if-match", "if-unmodified-since", "if-range")
_SPECIAL = frozenset(_INELIGIBLE + ("cache-control", "pragma"))


def eligible(method: str, headers: HeaderItems, has_body: bool = False) -> Optional[_Request]:
    """The request's directives and fields if it may be answered from the
    mapping at all, else None. Ranges, preconditions other than
    If-None-Match and If-Modified-Since, request bodies and no-cache go to
    the sidecar, which implements all of RFC 9111."""
    if method not in ("GET", "HEAD") or has_body:
        return None
    d = _Request()
    fields = d.fields
    for n, v in headers:
        ln = n.lower()
        vs = fields.get(ln)
        if vs is None:
            fields[ln] = [v]
        else:
            vs.append(v)
    if _SPECIAL.isdisjoint(fields):
        return d  # the common case: nothing that needs a closer look
    for ln in _INELIGIBLE:
        vs = fields.get(ln)
        if vs and vs[0]:
            return None
    cc = fields.get("cache-control")
    if not cc:
        # Pragma: no-cache counts only without Cache-Control (RFC 9111 §5.4).
        pragma = fields.get("pragma")
        return None if pragma and any(_has_token(p, "no-cache") for p in pragma) else d
    for line in cc:
        for part in line.split(","):
            name, _, arg = part.strip().partition("=")
            name = name.strip().lower()
            arg = arg.strip().strip('"')
            if name in ("no-cache", "no-store"):
                return None
            if name in ("max-age", "min-fresh"):
                try:
                    val = int(arg, 10)
                except ValueError:
                    return None
                if name == "max-age":
                    if val <= 0:
                        return None  # max-age=0: revalidate at the sidecar
                    d.max_age = val if d.max_age < 0 else min(d.max_age, val)
                else:
                    if val < 0:
                        return None
                    d.min_fresh = max(d.min_fresh, val)
    return d


def bypass_reason(method: str, headers: HeaderItems, has_body: bool = False) -> str:
    """Why eligible refused a request, by the app counters' names: "method",
    "body", "conditional" or "no_cache". Only called on the bypass path."""
    if method not in ("GET", "HEAD"):
        return "method"
    if has_body:
        return "body"
    seen = set()
    for n, v in headers:
        ln = n.lower()
        if ln in _INELIGIBLE and ln not in seen:
            if v:
                return "conditional"  # eligible looks at the first value only
            seen.add(ln)
    return "no_cache"


def _http_date(v: str) -> Optional[float]:
    try:
        return parsedate_to_datetime(v).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def not_modified(fields: Dict[str, List[str]], stored: List[Tuple[str, str]]) -> bool:
    """Evaluates the app's own conditional request (its fields by lower-case
    name) against the stored response's validators (RFC 9110 §13.1.2,
    §13.1.3; If-None-Match wins)."""
    inm = fields.get("if-none-match")
    if inm:
        etag = _values(stored, "ETag")
        if not etag or not etag[0]:
            return False
        et = etag[0][2:] if etag[0].startswith("W/") else etag[0]
        for line in inm:
            for t in line.split(","):
                t = t.strip()
                if t == "*" or (t[2:] if t.startswith("W/") else t) == et:
                    return True  # weak comparison, as If-None-Match requires
        return False
    ims = fields.get("if-modified-since")
    lms = _values(stored, "Last-Modified")
    if not ims or not lms:
        return False
    since = _http_date(ims[0])
    lm = _http_date(lms[0])
    return since is not None and lm is not None and lm <= since


class Client:
    """Reads the shared cache and decides what to answer from it.

    cache_dir defaults to $ZEROHOP_CACHE_DIR, else /var/run/zerohop; the
    sidecar address to $ZEROHOP_SIDECAR, else 127.0.0.1:8089. If the cache
    file does not exist yet, every request goes to the sidecar until it
    does (``strict=True`` raises instead).
    """

    def __init__(
        self,
        cache_dir: Optional[str] = None,
        *,
        sidecar: Optional[str] = None,
        mode: str = "mmap",
        max_writer_silence_ms: int = 2000,
        strict: bool = False,
        invalidation_log: Optional[str] = None,
        origin: Optional[str] = None,
        reader: Optional[Reader] = None,
        counters_dir: Optional[str] = None,
    ) -> None:
        self.cache_dir = cache_dir or os.environ.get("ZEROHOP_CACHE_DIR") or DEFAULT_CACHE_DIR
        self.sidecar = sidecar or os.environ.get("ZEROHOP_SIDECAR") or DEFAULT_SIDECAR
        self.reader = reader or Reader(
            self.cache_dir, mode=mode, max_writer_silence_ms=max_writer_silence_ms, lazy=not strict
        )
        self.hits = 0  # answered from shared memory
        self.not_modified = 0  # of those, 304s to the app's conditional request
        self.misses = 0  # eligible, but not fresh in shared memory: forwarded
        self.bypassed = 0  # not eligible: forwarded (the sum of the four below)
        self.bypass_method = 0  # not GET or HEAD
        self.bypass_body = 0  # a request body
        self.bypass_conditional = 0  # Range, If-Match, If-Unmodified-Since, If-Range
        self.bypass_no_cache = 0  # request Cache-Control / Pragma asks for revalidation
        self.served_bytes = 0  # body bytes answered from shared memory (not HEAD, not 304)
        self._log_path = invalidation_log or os.path.join(self.cache_dir, "inval", "inval.log")
        self.counters_file: Optional[str] = None
        self.counters_error: Optional[BaseException] = None
        self._flusher: Optional[_counters.Flusher] = None
        self._counters_dir = counters_dir or os.path.dirname(self._log_path)
        if counters_dir != "off":
            self._start_counters()
            if self._flusher is not None and hasattr(os, "register_at_fork"):
                # A pre-forking server (gunicorn --preload, multiprocessing)
                # forks after the client is made: each child publishes its
                # own counts in its own file, from zero.
                ref = weakref.ref(self)

                def in_child() -> None:
                    c = ref()
                    if c is not None:
                        c._after_fork()

                os.register_at_fork(after_in_child=in_child)
        self._origin = origin if origin is not None else "app@" + socket.gethostname()
        self._log: Optional[InvalidationLog] = None
        self._log_mu = threading.Lock()
        # Parsed stored fields by (mapping, position), and whole response
        # field lists by (mapping, position, age, ttl).
        self._hdr_cache: Dict[Tuple[int, int], List[Tuple[str, str]]] = {}
        self._resp_cache: Dict[Tuple[int, int, int, int], List[Tuple[str, str]]] = {}
        self._keys: Dict[Tuple[str, StrOrBytes, StrOrBytes, StrOrBytes], bytes] = {}

    @property
    def sidecar_url(self) -> str:
        """The sidecar as a proxy URL, for forwarding."""
        return "http://" + self.sidecar

    # ---- lookups ----

    def get(
        self,
        method: str,
        scheme: StrOrBytes,
        host: StrOrBytes,
        target: StrOrBytes,
        headers: Optional[HeaderItems] = None,
        now_ms: Optional[int] = None,
    ) -> Optional[Entry]:
        """The fresh stored response for a request, following a Vary
        marker (which must itself be fresh) to the request's variant. No
        client policy (Authorization, headers-only) is applied: see serve."""
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        return self._lookup(method, scheme, host, target, None, header_getter(headers), now)

    def _lookup(
        self,
        method: str,
        scheme: StrOrBytes,
        host: StrOrBytes,
        target: StrOrBytes,
        fields: Optional[Dict[str, List[str]]],
        get: Optional[GetValues],
        now: int,
    ) -> Optional[Entry]:
        """The fresh entry for a request; the Vary marker's fields come from
        fields (lower-case names) or get."""
        if method == "HEAD":
            method = "GET"  # a stored GET answers a HEAD
        # Building a key costs more than finding it again: keep the recent
        # ones (a bounded dict; cleared when full).
        ck = (method, scheme, host, target)
        keys = self._keys
        key = keys.get(ck)
        if key is None:
            key = primary_key(method, scheme, host, target)
            if len(keys) >= 4096:
                keys.clear()
            keys[ck] = key
        r = self.reader
        e = r._get(key, now, True)
        if e is None or not e.flags & FLAG_VARY_INDEX:
            return e
        if get is None:
            fl = fields or {}

            def get(n: str) -> Sequence[StrOrBytes]:
                return fl.get(n.lower()) or ()

        return r._get(vary_key(key, e.vary_block, get), now, True)

    def serve(
        self,
        method: str,
        scheme: StrOrBytes,
        host: StrOrBytes,
        target: StrOrBytes,
        headers: HeaderItems = (),
        *,
        has_body: bool = False,
        now_ms: Optional[int] = None,
    ) -> Optional[CachedResponse]:
        """The response to answer the request with from the mapping, or
        None: send the request to the sidecar. host is the authority the
        request is sent with and target the path and query exactly as on
        the request line."""
        d = eligible(method, headers, has_body)
        if d is None:
            self.bypassed += 1
            why = bypass_reason(method, headers, has_body)
            if why == "method":
                self.bypass_method += 1
            elif why == "body":
                self.bypass_body += 1
            elif why == "conditional":
                self.bypass_conditional += 1
            else:
                self.bypass_no_cache += 1
            return None
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        fields = d.fields
        e = self._lookup(method, scheme, host, target, fields, None, now)
        if e is not None:
            resident = (now - e.stored_ms) // 1000
            age = e.initial_age + (resident if resident > 0 else 0)
            ttl = (e.expires_ms - now) // 1000
            auth = fields.get("authorization")
            if not (
                (auth and auth[0] and not e.flags & FLAG_AUTH_SHARED)  # RFC 9111 §3.5
                or (d.max_age >= 0 and age > d.max_age)
                or (d.min_fresh > 0 and ttl < d.min_fresh)
                or (e.flags & FLAG_HEADERS_ONLY and method != "HEAD")  # only the headers were stored
            ):
                return self._response(method, fields, e, age, ttl)
        self.misses += 1
        return None

    def _response(self, method: str, fields: Dict[str, List[str]], e: Entry, age: int, ttl: int) -> CachedResponse:
        if method == "GET" and "if-none-match" not in fields and "if-modified-since" not in fields:
            # The common case. Its header fields depend only on the entry,
            # its age and its ttl, which change once a second: build them
            # once per second and entry.
            ck = (e.gen, e.pos, age, ttl)
            full = self._resp_cache.get(ck)
            if full is None:
                full = self._base_headers(e, False).copy()
                full.append(("Age", str(age)))
                full.append(("Cache-Status", f"{CACHE_NAME}; hit; ttl={ttl}; detail=shm"))
                full.append(("Content-Length", str(e._offs[6] - e._offs[5])))
                if len(self._resp_cache) >= 4096:
                    self._resp_cache.clear()
                self._resp_cache[ck] = full
            self.hits += 1
            body = e.body
            self.served_bytes += len(body)
            return CachedResponse(e.status, full.copy(), body, e)
        # Stored fields in order, less Age (ours replaces it) and, unless a
        # HEAD answered from a headers-only entry keeps the stored one,
        # Content-Length (set from the body below).
        keep_length = bool(method == "HEAD" and e.flags & FLAG_HEADERS_ONLY)
        hdrs = self._base_headers(e, keep_length).copy()
        hdrs.append(("Age", str(age)))
        status = e.status
        if ("if-none-match" in fields or "if-modified-since" in fields) and not_modified(fields, hdrs):
            status = 304
            self.not_modified += 1
            if keep_length:
                hdrs = [(n, v) for n, v in hdrs if n.lower() != "content-length"]
        hdrs.append(("Cache-Status", f"{CACHE_NAME}; hit; ttl={ttl}; detail=shm"))
        self.hits += 1
        body = b""
        if status == 304:
            pass
        elif method == "HEAD":
            # A HEAD answered from a stored GET carries the GET's length.
            if not keep_length:
                hdrs.append(("Content-Length", str(len(e.body))))
        else:
            body = e.body
            self.served_bytes += len(body)
            hdrs.append(("Content-Length", str(len(body))))
        return CachedResponse(status, hdrs, body, e)

    def _base_headers(self, e: Entry, keep_length: bool) -> List[Tuple[str, str]]:
        """The stored fields less Age and (unless keep_length) Content-Length,
        which the response sets itself. Callers copy the list."""
        ck = (e.gen, e.pos)
        base = None if keep_length else self._hdr_cache.get(ck)
        if base is None:
            base = []
            for n, v in e.headers:
                ln = n.lower()
                if ln == "age" or (ln == "content-length" and not keep_length):
                    continue
                base.append((n, v))
            if not keep_length:
                if len(self._hdr_cache) >= 4096:
                    self._hdr_cache.clear()
                # Entries are immutable, and (mapping, position) names one
                # entry for the life of the mapping.
                self._hdr_cache[ck] = base
        return base

    def serve_url(
        self, method: str, url: str, headers: HeaderItems = (), *, now_ms: Optional[int] = None
    ) -> Optional[CachedResponse]:
        """serve for an absolute URL (target taken as written)."""
        scheme, host, target = split_url(url)
        return self.serve(method, scheme, host, target, headers, now_ms=now_ms)

    def stats(self) -> Dict[str, Union[int, Dict[str, int]]]:
        return {
            "hits": self.hits,
            "not_modified": self.not_modified,
            "misses": self.misses,
            "bypassed": self.bypassed,
            "cache": self.reader.stats.as_dict(),
        }

    def _start_counters(self) -> None:
        try:
            pub = _counters.Publisher(self._counters_dir)
        except OSError as err:
            self.counters_error = err  # the app works on; its counters are missing from /metrics
            return
        self.counters_file = pub.path
        self._flusher = _counters.Flusher(pub, self._counter_values)

    def _after_fork(self) -> None:
        f, self._flusher = self._flusher, None
        if f is None:
            return  # closed, or never published
        f.abandon()
        self.hits = self.not_modified = self.misses = self.bypassed = self.served_bytes = 0
        self.bypass_method = self.bypass_body = self.bypass_conditional = self.bypass_no_cache = 0
        s = self.reader.stats
        for k in s.__slots__:
            setattr(s, k, 0)
        self.counters_file = None
        self._start_counters()

    def _counter_values(self) -> List[int]:
        """The app counters in docs/format.md's order (counters.NAMES)."""
        s = self.reader.stats
        return [
            self.hits,
            self.not_modified,
            self.misses,
            self.bypass_method,
            self.bypass_body,
            self.bypass_conditional,
            self.bypass_no_cache,
            self.served_bytes,
            s.hits,
            s.misses,
            s.expired,
            s.torn_retries,
            s.torn,
            s.overruns,
            s.corrupt,
            s.collisions,
            s.writer_stale,
            s.faults,
            s.remaps,
        ]

    def publish_counters(self) -> None:
        """Copies the counters to the counters file now rather than at the
        next one-second tick (an app about to exit, a test). Does nothing
        when counters are not published."""
        f = self._flusher
        if f is not None:
            f.flush()

    def healthy(self) -> bool:
        """Whether hits are being served (the sidecar's heartbeat is recent)."""
        return self.reader.healthy()

    # ---- invalidation ----

    def invalidate(self, record: Record, timeout: Optional[float] = 5.0) -> int:
        """Appends record to the invalidation log the sidecar applies and
        waits until it has applied it, so that this app's next read cannot
        return what it purged (read-your-purge). Returns the record's
        sequence number. On timeout the record stays in the log and will be
        applied; InvalidationError is raised."""
        with self._log_mu:
            if self._log is None:
                self._log = InvalidationLog(self._log_path, origin=self._origin)
            lg = self._log
        seq = lg.append(record, timeout=timeout)
        wait_applied(self.reader.invalidation_seq, seq, timeout)
        return seq

    def invalidate_url(self, url: str, *, soft: bool = False, timeout: Optional[float] = 5.0) -> int:
        """Invalidates one absolute URL and all its Vary variants."""
        return self.invalidate(Record.key(url, SOFT if soft else HARD), timeout)

    def invalidate_prefix(self, prefix: str, *, soft: bool = False, timeout: Optional[float] = 5.0) -> int:
        """Invalidates every URL under an absolute URL prefix."""
        return self.invalidate(Record.prefix(prefix, SOFT if soft else HARD), timeout)

    def invalidate_tag(self, tag: str, *, soft: bool = False, timeout: Optional[float] = 5.0) -> int:
        """Invalidates every response carrying a surrogate key."""
        return self.invalidate(Record.tag(tag, SOFT if soft else HARD), timeout)

    def invalidate_all(self, *, soft: bool = False, timeout: Optional[float] = 5.0) -> int:
        """Invalidates everything."""
        return self.invalidate(Record.all(SOFT if soft else HARD), timeout)

    def close(self) -> None:
        """Publishes the counters a last time, closes their file (the
        sidecar folds it into its departed total), unmaps the cache and
        closes the log; adapters keep forwarding."""
        f, self._flusher = self._flusher, None
        if f is not None:
            f.stop()
        with self._log_mu:
            if self._log is not None:
                self._log.close()
                self._log = None
        self.reader.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
