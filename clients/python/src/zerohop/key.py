"""The canonical cache key (docs/format.md, "Canonical key").

Every writer and reader builds the same bytes from a request::

    primary   = str16(method) str16(scheme) str16(host) str32(target)
    secondary = primary u16(n) n x ( str16(name) u8(present) str32(value) )

This is a transcription of shm/key.go; the golden vectors check it.
"""

from __future__ import annotations

import struct
from typing import Callable, Iterable, List, Optional, Sequence, Union

StrOrBytes = Union[str, bytes]

_u16 = struct.Struct("<H").pack
_u32 = struct.Struct("<I").pack


def to_bytes(s: StrOrBytes) -> bytes:
    """Bytes of a URL part: str is UTF-8 (what the wire carries for raw
    non-ASCII targets); bytes are taken as they are."""
    if isinstance(s, bytes):
        return s
    return s.encode("utf-8", "surrogateescape")


def header_bytes(s: StrOrBytes) -> bytes:
    """Bytes of a header value as HTTP libraries send it: Latin-1 for str
    (http.client's rule), falling back to UTF-8 for text outside it."""
    if isinstance(s, bytes):
        return s
    try:
        return s.encode("latin-1")
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogateescape")


def _str16(b: bytes) -> bytes:
    # A length over 65535 saturates instead of wrapping, so two requests can
    # never share a key; such a key is never stored and can only miss.
    return _u16(min(len(b), 0xFFFF)) + b


def trim_default_port(scheme: bytes, host: bytes) -> bytes:
    """Drops :80 for http and :443 for https (scheme compared ASCII
    case-insensitively); every other port stays."""
    s = scheme.lower()
    if s == b"http" and host.endswith(b":80"):
        return host[:-3]
    if s == b"https" and host.endswith(b":443"):
        return host[:-4]
    return host


def primary_key(method: StrOrBytes, scheme: StrOrBytes, host: StrOrBytes, target: StrOrBytes) -> bytes:
    """The primary key of a request. A HEAD must be looked up as GET; this
    function encodes whatever method it is given (as Go's AppendKey)."""
    m = to_bytes(method)
    sc = to_bytes(scheme)
    h = trim_default_port(sc, to_bytes(host))
    t = to_bytes(target)
    # bytes.lower() changes ASCII letters only, as the format requires.
    return b"".join((_str16(m), _str16(sc.lower()), _str16(h.lower()), _u32(len(t)), t))


def split_list(line: bytes) -> List[bytes]:
    """Splits a field line at commas outside quoted strings; a backslash
    inside a quoted string escapes the next byte (shm/key.go splitList)."""
    parts: List[bytes] = []
    start = 0
    quoted = False
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if quoted and c == 0x5C:  # backslash: the next byte is data
            i += 1
        elif c == 0x22:  # "
            quoted = not quoted
        elif c == 0x2C and not quoted:  # ,
            parts.append(line[start:i])
            start = i + 1
        i += 1
    parts.append(line[start:])
    return parts


def normalize_field_value(lines: Iterable[bytes]) -> bytes:
    """Joins field lines into one normalised value: members split outside
    quoted strings, SP/HTAB trimmed from each, joined with ','."""
    out: List[bytes] = []
    for line in lines:
        if 0x2C in line or 0x22 in line:
            out.extend(p.strip(b" \t") for p in split_list(line))
        else:
            out.append(line.strip(b" \t"))
    return b",".join(out)


def iter_str16(block: bytes) -> List[bytes]:
    """The strings of a str16 block (vary and tags blocks); stops at the
    first one that does not fit."""
    out: List[bytes] = []
    p = 0
    n = len(block)
    while p + 2 <= n:
        ln = block[p] | (block[p + 1] << 8)
        if p + 2 + ln > n:
            break
        out.append(block[p + 2 : p + 2 + ln])
        p += 2 + ln
    return out


GetValues = Callable[[str], Sequence[StrOrBytes]]


def vary_key(primary: bytes, vary_block: bytes, get_values: GetValues) -> bytes:
    """The secondary key for the names of a Vary marker's vary block, with
    values from get_values(name), which returns the request's field lines
    for a lower-case name (matching names case-insensitively)."""
    names = iter_str16(vary_block)
    parts = [primary, _u16(len(names))]
    for name in names:
        vals = get_values(name.decode("latin-1"))
        parts.append(_str16(name.lower()))
        if not vals:
            parts.append(b"\x00\x00\x00\x00\x00")
            continue
        v = normalize_field_value([header_bytes(x) for x in vals])
        parts.append(b"\x01")
        parts.append(_u32(len(v)))
        parts.append(v)
    return b"".join(parts)


def header_getter(pairs: Optional[Iterable[Sequence[StrOrBytes]]]) -> GetValues:
    """A get_values function over (name, value) field lines in order."""
    lines = [(header_bytes(p[0]).decode("latin-1").lower(), p[1]) for p in (pairs or ())]

    def get(name: str) -> List[StrOrBytes]:
        ln = name.lower()
        return [v for n, v in lines if n == ln]

    return get
