"""The golden vectors of shm/testdata/golden (docs/format.md, "Golden
vectors"): every lookup, every client answer and every cases/ file, in
both access modes. The same files the Go reader is tested against."""

from __future__ import annotations

import base64
import os
import shutil
import time
from typing import Any, Dict, List, Tuple

import pytest

from zerohop import Reader, primary_key, vary_key
from zerohop import errors as zerr
from zerohop.client import Client
from zerohop.key import header_getter

from conftest import GOLDEN_DIR

MODES = ["mmap", "pread"]


def keys_of(r: Reader, l: Dict[str, Any]) -> Tuple[bytes, bytes]:
    m = "GET" if l["method"] == "HEAD" else l["method"]
    pk = primary_key(m, l["scheme"], l["host"], l["target"])
    if "primary_key_hex" not in l:
        return pk, pk
    marker = r.get_stale(pk, 0)
    assert marker is not None and marker.flags & 1, "no vary marker under the primary key"
    return pk, vary_key(pk, marker.vary_block, header_getter(l.get("request_headers")))


def result(r: Reader, key: bytes, now: int) -> str:
    if r.get(key, now) is not None:
        return "hit"
    return "stale" if r.get_stale(key, now) is not None else "miss"


def entry_fields(r: Reader, key: bytes, now: int) -> Dict[str, Any]:
    e = r.get_stale(key, now)
    assert e is not None
    return {
        "pos": e.pos,
        "total_len": len(e.raw),
        "status": e.status,
        "flags": e.flags,
        "headers": [list(h) for h in e.headers],
        "body_base64": base64.b64encode(e.body).decode(),
        "etag": e.etag.decode("latin-1"),
        "last_modified": e.last_modified.decode("latin-1"),
        "entry_vary": e.vary,
        "tags": [t.decode("latin-1") for t in e.tags],
        "stored_ms": e.stored_ms,
        "expires_ms": e.entry_expires_ms,
        "effective_expires_ms": e.expires_ms,
        "initial_age": e.initial_age,
        "swr": e.swr,
        "sie": e.sie,
    }


WANT_FIELDS = [
    "pos",
    "total_len",
    "status",
    "flags",
    "headers",
    "body_base64",
    "etag",
    "last_modified",
    "entry_vary",
    "tags",
    "stored_ms",
    "expires_ms",
    "effective_expires_ms",
    "initial_age",
    "swr",
    "sie",
]


@pytest.mark.parametrize("mode", MODES)
def test_lookups(golden: Dict[str, Any], mode: str) -> None:
    """Every lookup: the key bytes, the hash, the result and the entry."""
    now = golden["now_ms"]
    with Reader(GOLDEN_DIR, mode=mode, offline=True) as r:
        for l in golden["lookups"]:
            pk, key = keys_of(r, l)
            if "primary_key_hex" in l:
                assert pk.hex() == l["primary_key_hex"], l["name"]
            assert key.hex() == l["key_hex"], l["name"]
            assert result(r, key, now) == l["expect"], l["name"]
            if l["expect"] != "miss":
                got = entry_fields(r, key, now)
                assert got == {k: l[k] for k in WANT_FIELDS}, l["name"]
                assert r.get_stale(key, now).hash == int(l["hash"], 16)  # type: ignore[union-attr]
        s = r.stats
        assert s.corrupt == s.collisions == s.torn == s.overruns == s.faults == 0, s


def _request(l: Dict[str, Any]) -> Tuple[str, List[Tuple[str, str]]]:
    return l["method"], [tuple(h) for h in l.get("request_headers") or []]  # type: ignore[misc]


@pytest.mark.parametrize("mode", MODES)
def test_serve(golden: Dict[str, Any], mode: str) -> None:
    """What the client answers for each request: Authorization only with
    flag 16, headers-only entries only for HEAD, variants only through a
    fresh marker."""
    now = golden["now_ms"]
    c = Client(GOLDEN_DIR, reader=Reader(GOLDEN_DIR, mode=mode, offline=True))
    for l in golden["lookups"]:
        method, headers = _request(l)
        cr = c.serve(method, l["scheme"], l["host"], l["target"], headers, now_ms=now)
        assert ("hit" if cr is not None else "forward") == l["serve"], (l["name"], l.get("serve_reason"))
        if cr is None:
            continue
        e = cr.entry
        assert cr.status == e.status
        age = e.initial_age + max(0, (now - e.stored_ms) // 1000)
        assert cr.header("Age") == str(age)
        assert cr.headers[-1][0] in ("Cache-Status", "Content-Length")
        ttl = (e.expires_ms - now) // 1000
        assert ("Cache-Status", f"zerohop; hit; ttl={ttl}; detail=shm") in cr.headers
        if method == "HEAD":
            assert cr.body == b""
        else:
            assert cr.body == base64.b64decode(l["body_base64"])
            assert cr.header("Content-Length") == str(len(cr.body))


def test_serve_conditional_and_directives(golden: Dict[str, Any]) -> None:
    """The app's own conditionals get a 304 from the mapping; request
    directives the client cannot honour go to the sidecar."""
    now = golden["now_ms"]
    c = Client(GOLDEN_DIR, reader=Reader(GOLDEN_DIR, offline=True))
    get = lambda hs: c.serve("GET", "http", "example.com", "/", hs, now_ms=now)  # noqa: E731
    # The golden entries keep their validators in the entry, not in stored
    # ETag or Last-Modified fields; the app's conditional is evaluated
    # against the fields it would have seen (tested with the real sidecar in
    # test_sidecar.py), so these are plain 200s.
    cr = get([("If-None-Match", '"a1"')])
    assert cr is not None and cr.status == 200
    for hs in (
        [("Cache-Control", "no-cache")],
        [("Cache-Control", "max-age=0")],
        [("Pragma", "no-cache")],
        [("Range", "bytes=0-1")],
        [("If-Match", '"a1"')],
        [("Cache-Control", "min-fresh=999999")],
    ):
        assert get(hs) is None, hs
    assert get([("Cache-Control", "max-age=60"), ("Pragma", "no-cache")]) is not None
    assert c.serve("POST", "http", "example.com", "/", [], now_ms=now) is None
    assert c.serve("GET", "http", "example.com", "/", [], has_body=True, now_ms=now) is None
    assert c.bypassed == 7 and c.hits == 2 and c.not_modified == 0 and c.misses == 1


OPEN_ERRORS = {
    "truncated": zerr.TruncatedError,
    "bad magic": zerr.BadMagicError,
    "version": zerr.VersionError,
    "corrupt": zerr.CorruptError,
    "not ready": zerr.NotReadyError,
}


def _case_dir(tmp_path: Any, f: Dict[str, Any]) -> str:
    d = os.path.join(str(tmp_path), os.path.basename(f["file"]))
    os.makedirs(d)
    shutil.copy(os.path.join(GOLDEN_DIR, f["file"]), os.path.join(d, "cache.shm"))
    return d


@pytest.mark.parametrize("mode", MODES)
def test_cases(golden: Dict[str, Any], tmp_path: Any, mode: str) -> None:
    """Writer states and damaged files: a clear exception or a miss, never
    a wrong answer, as expected.json's files say."""
    now = golden["now_ms"]
    assert len(golden["files"]) >= 15
    for f in golden["files"]:
        d = _case_dir(tmp_path / mode, f)
        for offline in (False, True):
            if f.get("open_error"):
                with pytest.raises(OPEN_ERRORS[f["open_error"]]):
                    Reader(d, mode=mode, offline=offline)
                continue
            serves = f["serves_offline"] if offline else f["serves_normal"]
            with Reader(d, mode=mode, offline=offline) as r:
                for l in golden["lookups"]:
                    key = bytes.fromhex(l["key_hex"])
                    want = l["expect"] if serves and l["name"] not in f["miss"] else "miss"
                    assert result(r, key, now) == want, (f["file"], offline, l["name"])
                s = r.stats
                reason = f.get("miss_reason")
                if offline and reason:
                    assert getattr(s, {"torn": "torn", "corrupt": "corrupt", "overrun": "overruns"}[reason]) > 0, s
                if not serves:
                    assert s.writer_stale > 0 and s.hits == 0


def test_live_case_serves_through_client(golden: Dict[str, Any]) -> None:
    """cases/live.shm with a normal (not offline) reader gives every serve
    result of expected.json; the same file with a silent writer gives none."""
    now = golden["now_ms"]
    for name, serves in (("live.shm", True), ("dead-writer.shm", False)):
        d = os.path.join(GOLDEN_DIR, "cases")
        # A reader over a single case file: point it at a private copy.
        tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"zh-py-{os.getpid()}-{name}")
        os.makedirs(tmp, exist_ok=True)
        shutil.copy(os.path.join(d, name), os.path.join(tmp, "cache.shm"))
        try:
            c = Client(tmp, strict=True)
            for l in golden["lookups"]:
                method, headers = _request(l)
                cr = c.serve(method, l["scheme"], l["host"], l["target"], headers, now_ms=now)
                want = l["serve"] if serves else "forward"
                assert ("hit" if cr else "forward") == want, (name, l["name"])
            c.close()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def test_missing_file(tmp_path: Any) -> None:
    with pytest.raises(FileNotFoundError):
        Reader(str(tmp_path))
    r = Reader(str(tmp_path), lazy=True)
    assert r.get(b"x") is None and r.stats.misses == 1
    c = Client(str(tmp_path))
    assert c.serve("GET", "http", "example.com", "/", []) is None and c.misses == 1
    # The file appears: the next recheck maps it.
    shutil.copy(os.path.join(GOLDEN_DIR, "cases", "live.shm"), os.path.join(str(tmp_path), "cache.shm"))
    r.healthy(now_ms=int(time.time() * 1000) + 1000)
    assert r.geometry is not None and r.stats.remaps == 1
