"""Absolute URLs split into the parts a cache key is made of."""

from __future__ import annotations

from typing import Tuple


def split_url(url: str) -> Tuple[str, str, str]:
    """scheme, host (with port, without userinfo) and target (path and
    query exactly as written, no fragment, empty path "/") of an absolute
    URL, as invalidate.SplitURL does."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"{url!r} is not an absolute URL")
    end = len(rest)
    for c in "/?#":
        i = rest.find(c)
        if 0 <= i < end:
            end = i
    host = rest[:end].rpartition("@")[2]
    target = rest[end:].partition("#")[0]
    if target == "":
        target = "/"
    elif target[0] == "?":
        target = "/" + target
    return scheme, host, target
