"""XXH64, the key hash of the cache file (docs/format.md, "Conventions").

The ``xxhash`` package (C) is used when it is installed; otherwise a
pure-Python implementation, so the client works without a compiler. The
pure version costs a few microseconds per key instead of ~0.1 µs.
"""

from __future__ import annotations

import struct
from typing import Callable

_M = 0xFFFFFFFFFFFFFFFF
_P1 = 0x9E3779B185EBCA87
_P2 = 0xC2B2AE3D27D4EB4F
_P3 = 0x165667B19E3779F9
_P4 = 0x85EBCA77C2B2AE63
_P5 = 0x27D4EB2F165667C5

_u64 = struct.Struct("<Q").unpack_from
_u32 = struct.Struct("<I").unpack_from
_4u64 = struct.Struct("<4Q").unpack_from


def _round(acc: int, lane: int) -> int:
    acc = (acc + lane * _P2) & _M
    acc = ((acc << 31) | (acc >> 33)) & _M
    return (acc * _P1) & _M


def _merge(acc: int, val: int) -> int:
    acc ^= _round(0, val)
    return (acc * _P1 + _P4) & _M


def xxh64_pure(data: bytes, seed: int = 0) -> int:
    """XXH64 of data with a 64-bit seed, in pure Python."""
    n = len(data)
    p = 0
    if n >= 32:
        v1 = (seed + _P1 + _P2) & _M
        v2 = (seed + _P2) & _M
        v3 = seed & _M
        v4 = (seed - _P1) & _M
        limit = n - 32
        while p <= limit:
            a, b, c, d = _4u64(data, p)
            v1 = _round(v1, a)
            v2 = _round(v2, b)
            v3 = _round(v3, c)
            v4 = _round(v4, d)
            p += 32
        h = (
            ((v1 << 1) | (v1 >> 63))
            + ((v2 << 7) | (v2 >> 57))
            + ((v3 << 12) | (v3 >> 52))
            + ((v4 << 18) | (v4 >> 46))
        ) & _M
        h = _merge(h, v1)
        h = _merge(h, v2)
        h = _merge(h, v3)
        h = _merge(h, v4)
    else:
        h = (seed + _P5) & _M
    h = (h + n) & _M
    while p + 8 <= n:
        k = _round(0, _u64(data, p)[0])
        h ^= k
        h = ((((h << 27) | (h >> 37)) & _M) * _P1 + _P4) & _M
        p += 8
    if p + 4 <= n:
        h ^= (_u32(data, p)[0] * _P1) & _M
        h = ((((h << 23) | (h >> 41)) & _M) * _P2 + _P3) & _M
        p += 4
    while p < n:
        h ^= (data[p] * _P5) & _M
        h = ((((h << 11) | (h >> 53)) & _M) * _P1) & _M
        p += 1
    h ^= h >> 33
    h = (h * _P2) & _M
    h ^= h >> 29
    h = (h * _P3) & _M
    h ^= h >> 32
    return h


try:  # pragma: no cover - depends on the environment
    import xxhash as _xxhash

    xxh64: Callable[[bytes, int], int] = _xxhash.xxh64_intdigest
    IMPLEMENTATION = "xxhash"
except ImportError:  # pragma: no cover
    xxh64 = xxh64_pure
    IMPLEMENTATION = "pure-python"
