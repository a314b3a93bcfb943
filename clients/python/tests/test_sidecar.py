"""End to end with the real sidecar (`zerohop run` built from this
repository) and a real origin, both on 127.0.0.1: a miss goes through the
sidecar, the next request is a zero-hop hit from the mapping with
Cache-Status, and invalidate() makes it a miss again (read-your-purge)."""

from __future__ import annotations

import asyncio
import os
import shutil
from typing import Iterator, List, Tuple

import httpx
import pytest
import requests

import zerohop
from zerohop.adapters.httpx import AsyncZerohopTransport, ZerohopTransport
from zerohop.adapters.requests import ZerohopAdapter
from zerohop.client import Client

from helpers import Origin, Sidecar, go_build, wait_until

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain to build the sidecar")

# Requests' and httpx's default Accept-Encoding make the sidecar store a
# compressed variant; the adapters key on the same headers they send.


@pytest.fixture(scope="module")
def env() -> Iterator[Tuple[Sidecar, Origin]]:
    sc = Sidecar(go_build("./cmd/zerohop", "zerohop"))
    o = Origin()
    try:
        yield sc, o
    finally:
        o.close()
        sc.close()


def _is_shm_hit(cache_status: str) -> bool:
    return cache_status.endswith("detail=shm")


def test_requests_miss_hit_invalidate(env: Tuple[Sidecar, Origin]) -> None:
    sc, o = env
    c = Client(sc.dir, sidecar=sc.listen, strict=True)
    s = requests.Session()
    a = ZerohopAdapter(c)
    s.mount("http://", a)
    url = o.url("/c/requests")

    r = s.get(url, timeout=10)
    assert r.status_code == 200 and o.count("/c/requests") == 1
    assert "fwd=uri-miss" in r.headers["Cache-Status"]  # the sidecar answered
    first = r.content

    # The sidecar stores after answering: wait until the mapping has it.
    hs: List[Tuple[str, str]] = list(s.headers.items())
    assert wait_until(lambda: c.get("GET", "http", f"127.0.0.1:{o.port}", "/c/requests", hs) is not None)

    hits = c.hits
    r = s.get(url, timeout=10)
    assert r.status_code == 200 and _is_shm_hit(r.headers["Cache-Status"]), r.headers
    assert r.headers["Age"].isdigit()
    assert r.content == first and o.count("/c/requests") == 1
    assert c.hits == hits + 1

    # The app's own conditional request: a 304 from the mapping.
    r = s.get(url, headers={"If-None-Match": r.headers["ETag"]}, timeout=10)
    assert r.status_code == 304 and r.content == b"" and _is_shm_hit(r.headers["Cache-Status"])
    assert c.not_modified == 1

    # A request with Authorization: the stored response lacks public /
    # s-maxage / must-revalidate, so the sidecar answers it.
    r = s.get(url, headers={"Authorization": "Bearer x"}, timeout=10)
    assert not _is_shm_hit(r.headers.get("Cache-Status", ""))

    seq = c.invalidate_url(url)
    assert seq >= 1 and c.reader.invalidation_seq() >= seq
    assert c.get("GET", "http", f"127.0.0.1:{o.port}", "/c/requests", hs) is None  # read-your-purge
    r = s.get(url, timeout=10)
    assert r.status_code == 200 and not _is_shm_hit(r.headers["Cache-Status"])
    assert o.count("/c/requests") == 2
    assert r.content.startswith(b"body of /c/requests #2")
    c.close()


def test_httpx_sync_and_async(env: Tuple[Sidecar, Origin]) -> None:
    sc, o = env
    c = Client(sc.dir, sidecar=sc.listen, strict=True)
    url = o.url("/c/httpx")
    with httpx.Client(transport=ZerohopTransport(c), timeout=10) as hc:
        r = hc.get(url)
        assert r.status_code == 200 and not _is_shm_hit(r.headers["cache-status"])
        hs = [(k.decode(), v.decode()) for k, v in hc.build_request("GET", url).headers.raw]
        assert wait_until(lambda: c.get("GET", "http", f"127.0.0.1:{o.port}", "/c/httpx", hs) is not None)
        r2 = hc.get(url)
        assert r2.status_code == 200 and _is_shm_hit(r2.headers["cache-status"])
        assert r2.content == r.content and o.count("/c/httpx") == 1
        r3 = hc.head(url)
        assert r3.status_code == 200 and r3.content == b"" and _is_shm_hit(r3.headers["cache-status"])
        assert r3.headers["content-length"] == str(len(r2.content)) or "content-encoding" in r2.headers

    async def run() -> bytes:
        async with httpx.AsyncClient(transport=AsyncZerohopTransport(c), timeout=10) as ac:
            r = await ac.get(url)
            assert _is_shm_hit(r.headers["cache-status"])
            return r.content

    assert asyncio.run(run()) == r.content and o.count("/c/httpx") == 1

    c.invalidate_tag("t-c-httpx")  # the origin's Surrogate-Key
    with httpx.Client(transport=ZerohopTransport(c), timeout=10) as hc:
        r = hc.get(url)
        assert not _is_shm_hit(r.headers["cache-status"]) and o.count("/c/httpx") == 2
    c.close()


def test_invalidation_log_shared_with_go(env: Tuple[Sidecar, Origin]) -> None:
    """Python appends interleave with the sidecar's own appends (the admin
    purge endpoint goes through the same log and lock): sequence numbers
    stay strictly increasing and every record is applied."""
    sc, _ = env
    c = Client(sc.dir, sidecar=sc.listen, strict=True)
    seqs = [c.invalidate_tag(f"t{i}") for i in range(20)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 20
    admin = requests.post(f"http://{sc.admin}/purge?tag=zz", timeout=10)
    assert admin.status_code < 300, admin.text
    after = c.invalidate_all(soft=True)
    assert after > seqs[-1] + 1  # the sidecar's record came in between
    assert c.reader.invalidation_seq() >= after
    c.close()


def test_stats_and_health(env: Tuple[Sidecar, Origin]) -> None:
    sc, _ = env
    c = zerohop.client.Client(sc.dir, sidecar=sc.listen, strict=True)
    assert c.healthy()
    ws = c.reader.writer_stats()
    assert ws["state"] == 1 and ws["inserts"] >= 1
    st = c.stats()
    assert set(st) == {"hits", "not_modified", "misses", "bypassed", "cache"}
    c.close()


def test_urllib3_pool_manager(env: Tuple[Sidecar, Origin]) -> None:
    from zerohop.adapters.urllib3 import ZerohopPoolManager

    sc, o = env
    c = Client(sc.dir, sidecar=sc.listen, strict=True)
    http = ZerohopPoolManager(c)
    url = o.url("/raw/urllib3")
    r = http.request("GET", url)
    assert r.status == 200 and not _is_shm_hit(r.headers["Cache-Status"])
    assert wait_until(lambda: c.get("GET", "http", f"127.0.0.1:{o.port}", "/raw/urllib3") is not None)
    r2 = http.request("GET", url)
    assert r2.status == 200 and _is_shm_hit(r2.headers["Cache-Status"]) and r2.data == r.data
    assert o.count("/raw/urllib3") == 1
    c.invalidate_prefix(o.url("/raw/"))
    r3 = http.request("GET", url)
    assert not _is_shm_hit(r3.headers["Cache-Status"]) and o.count("/raw/urllib3") == 2
    http.clear()
    c.close()


def test_sidecar_crash_and_restart_remaps(env: Tuple[Sidecar, Origin], tmp_path: "os.PathLike[str]") -> None:
    """The sidecar is killed (SIGKILL): its heartbeat stops and the client
    stops serving from the mapping within max_writer_silence. A new sidecar
    on the same directory rebuilds the file (salvaging verified entries),
    renames it over cache.shm and marks the old one abandoned: the client
    maps the new file and serves hits again, with no restart of the app."""
    _, o = env
    binary = go_build("./cmd/zerohop", "zerohop")
    d = str(tmp_path)
    a = Sidecar(binary, cache_dir=d)
    listen = a.listen
    c = Client(d, sidecar=listen, strict=True, max_writer_silence_ms=500)
    url = o.url("/raw/crash")
    host = f"127.0.0.1:{o.port}"
    try:
        with httpx.Client(transport=ZerohopTransport(c), timeout=10) as hc:
            hc.get(url)
            hs = [(k.decode(), v.decode()) for k, v in hc.build_request("GET", url).headers.raw]
            assert wait_until(lambda: c.serve("GET", "http", host, "/raw/crash", hs) is not None)
            old_id = c.reader._f.id if c.reader._f else None
            a.kill()
            assert wait_until(lambda: c.serve("GET", "http", host, "/raw/crash", hs) is None, timeout=5)
            assert c.reader.stats.writer_stale > 0
            b = Sidecar(binary, cache_dir=d, listen=listen)
            try:
                assert wait_until(lambda: c.serve("GET", "http", host, "/raw/crash", hs) is not None, timeout=10)
                assert c.reader.stats.remaps >= 1 and c.reader._f is not None and c.reader._f.id != old_id
                r = hc.get(url)
                assert _is_shm_hit(r.headers["cache-status"]) and o.count("/raw/crash") == 1  # salvaged
            finally:
                b.close()
    finally:
        a.close()
        c.close()
