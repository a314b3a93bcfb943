"""zerohop: zero-hop HTTP cache hits for Python apps.

The zerohop sidecar keeps an HTTP response cache in a memory-mapped file
on a volume it shares with the app. This package reads fresh hits straight
from that file (no socket, no proxy hop) and sends every other request to
the sidecar. See README.md for the ten-line usage.
"""

from ._xxh64 import IMPLEMENTATION as XXH64_IMPLEMENTATION
from .client import CachedResponse, Client
from .entry import Entry
from .errors import (
    BadMagicError,
    CorruptError,
    InvalidationError,
    NotReadyError,
    ShmError,
    TruncatedError,
    VersionError,
    ZerohopError,
)
from .key import primary_key, vary_key
from .reader import Reader, ReadStats

__all__ = [
    "CachedResponse",
    "Client",
    "XXH64_IMPLEMENTATION",
    "BadMagicError",
    "CorruptError",
    "Entry",
    "InvalidationError",
    "NotReadyError",
    "ReadStats",
    "Reader",
    "ShmError",
    "TruncatedError",
    "VersionError",
    "ZerohopError",
    "primary_key",
    "vary_key",
]
