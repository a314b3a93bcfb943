"""A verified cache entry, parsed from the reader's private copy."""

from __future__ import annotations

import struct
from typing import List, Optional, Tuple

from .key import iter_str16
from .layout import ENTRY_HEADER_SIZE, FLAG_NO_CACHE

_hdr_field = struct.Struct("<HI").unpack_from


def parse_header_block(block: bytes) -> List[Tuple[str, str]]:
    """The (name, value) field lines of a header block, in stored order;
    stops at the first field that does not fit. Names and values are
    decoded as Latin-1, as HTTP libraries do."""
    out: List[Tuple[str, str]] = []
    # Latin-1 maps each byte to one character, so offsets in the decoded
    # text are offsets in the block: one decode for the whole block.
    text = block.decode("latin-1")
    p = 0
    n = len(block)
    unpack = _hdr_field
    append = out.append
    while p + 6 <= n:
        nl, vl = unpack(block, p)
        a = p + 6
        b = a + nl
        p = b + vl
        if p > n:
            break
        append((text[a:b], text[b:p]))
    return out


class Entry:
    """A stored response, copied out of the cache and verified.

    ``expires_ms`` is the effective expiry: the earlier of the entry's own
    and its slot's fresh-until (a soft purge lowers the latter). Header
    fields are parsed on first access.
    """

    __slots__ = (
        "raw",
        "pos",
        "hash",
        "stored_ms",
        "expires_ms",
        "entry_expires_ms",
        "initial_age",
        "swr",
        "sie",
        "status",
        "flags",
        "_offs",
        "_headers",
        "gen",
    )

    def __init__(
        self,
        raw: bytes,
        pos: int,
        h: int,
        stored_ms: int,
        expires_ms: int,
        entry_expires_ms: int,
        initial_age: int,
        swr: int,
        sie: int,
        status: int,
        flags: int,
        offs: Tuple[int, int, int, int, int, int, int, int],
        gen: int = 0,
    ) -> None:
        self.raw = raw
        self.pos = pos
        self.hash = h
        self.stored_ms = stored_ms
        self.expires_ms = expires_ms
        self.entry_expires_ms = entry_expires_ms
        self.initial_age = initial_age
        self.swr = swr
        self.sie = sie
        self.status = status
        self.flags = flags
        # Part boundaries: key, vary, etag, last-modified, tags, headers,
        # body start, body end.
        self._offs = offs
        self._headers: Optional[List[Tuple[str, str]]] = None
        # Which mapping it came from: (gen, pos) names one entry's bytes
        # forever, since positions are never reused within a file.
        self.gen = gen

    def _part(self, i: int) -> bytes:
        o = self._offs
        return self.raw[o[i] : o[i + 1]]

    @property
    def key(self) -> bytes:
        return self.raw[ENTRY_HEADER_SIZE : self._offs[0]]

    @property
    def vary_block(self) -> bytes:
        return self._part(0)

    @property
    def vary(self) -> List[str]:
        return [n.decode("latin-1") for n in iter_str16(self._part(0))]

    @property
    def etag(self) -> bytes:
        return self._part(1)

    @property
    def last_modified(self) -> bytes:
        return self._part(2)

    @property
    def tags(self) -> List[bytes]:
        return iter_str16(self._part(3))

    @property
    def header_block(self) -> bytes:
        return self._part(4)

    @property
    def headers(self) -> List[Tuple[str, str]]:
        """The stored response header fields, in stored order."""
        if self._headers is None:
            self._headers = parse_header_block(self._part(4))
        return self._headers

    def header(self, name: str) -> Optional[str]:
        """The first value of a stored header field (case-insensitive)."""
        ln = name.lower()
        for n, v in self.headers:
            if n.lower() == ln:
                return v
        return None

    @property
    def body(self) -> bytes:
        return self._part(5)

    def fresh(self, now_ms: int) -> bool:
        return self.flags & FLAG_NO_CACHE == 0 and now_ms < self.expires_ms

    def age_seconds(self, now_ms: int) -> int:
        """corrected_initial_age + resident time (RFC 9111 §4.2.3)."""
        resident = (now_ms - self.stored_ms) // 1000
        return self.initial_age + (resident if resident > 0 else 0)

    def __repr__(self) -> str:
        return f"<zerohop.Entry status={self.status} flags={self.flags} pos={self.pos} body={len(self.body)}B>"
