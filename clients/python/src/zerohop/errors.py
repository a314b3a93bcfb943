"""Errors. Opening a cache file fails with one of the ShmError subclasses
(the same cases as the Go reader's errors); a lookup never raises for bad
file content, it misses."""

from __future__ import annotations


class ZerohopError(Exception):
    """Base of every error this package raises."""


class ShmError(ZerohopError, ValueError):
    """The cache file cannot be used."""


class TruncatedError(ShmError):
    """The file is shorter than its header (or its header says)."""


class BadMagicError(ShmError):
    """The file is not a zerohop cache file."""


class VersionError(ShmError):
    """The file's major format version is not 2."""


class CorruptError(ShmError):
    """The header checksum or layout is inconsistent."""


class NotReadyError(ShmError):
    """No writer has published the file yet (state 0)."""


class InvalidationError(ZerohopError):
    """An invalidation could not be appended or was not applied in time."""
