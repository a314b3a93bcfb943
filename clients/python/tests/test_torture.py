"""Cross-language torture: the real Go writer churns a small cache file
(puts, replacements, reclaim of whole regions, deletes, soft purges, tag
purges: tests/torturewriter) while this process reads it and verifies every
hit byte for byte against the bytes the writer must have stored for that
key and version. A single wrong read fails the test.

ZEROHOP_TORTURE_SECONDS sets the duration (default 10)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import tempfile
import time
from typing import Dict, List, Optional, Tuple

import pytest

from zerohop import Entry, Reader, primary_key

from helpers import go_build

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain to build the writer")

KEYS = 2000
_M = 0xFFFFFFFFFFFFFFFF


def mix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M
    return x ^ (x >> 31)


def key(i: int) -> bytes:
    return primary_key("GET", "http", "torture.test", f"/k/{i}?" + "q" * (i % 50))


def body(i: int, ver: int) -> bytes:
    n = mix(((i << 32) ^ ver) & _M) % 4096
    prefix = f"id={i} ver={ver}\n".encode()
    d = hashlib.sha256(f"{i}:{ver}".encode()).digest()
    return (prefix + d * (n // 32 + 1))[:n]


def check(i: int, e: Optional[Entry], bodies: Dict[Tuple[int, int], bytes]) -> Optional[str]:
    """None if e is exactly what the writer stores for key i at the
    version e claims; else what is wrong."""
    if e is None:
        return "no entry"
    if e.key != key(i):
        return f"key {e.key!r} for id {i}"
    hs = e.headers
    if len(hs) != 3 or hs[0] != ("Content-Type", "text/plain") or hs[1] != ("X-Key", str(i)) or hs[2][0] != "X-Ver":
        return f"headers {hs} for id {i}"
    ver = int(hs[2][1])
    if e.status != (404 if ver % 5 == 0 else 200):
        return f"status {e.status} for id {i} ver {ver}"
    if e.etag != f'"{i}-{ver}"'.encode() or e.tags != [f"g{i % 16}".encode()] or e.vary_block or e.last_modified:
        return f"validators/tags for id {i} ver {ver}"
    if e.flags != 0:
        return f"flags {e.flags}"
    want = bodies.get((i, ver))
    if want is None:
        want = body(i, ver)
        if len(bodies) > 50000:
            bodies.clear()
        bodies[(i, ver)] = want
    if e.body != want:
        return f"body of id {i} ver {ver}: {len(e.body)} bytes, want {len(want)}"
    return None


def test_torture_go_writer_python_reader() -> None:
    seconds = float(os.environ.get("ZEROHOP_TORTURE_SECONDS", "10"))
    writer = go_build("./clients/python/tests/torturewriter", "torturewriter")
    d = tempfile.mkdtemp(prefix="zerohop-torture-")
    p = subprocess.Popen(
        [writer, "-dir", d, "-seconds", str(seconds + 1)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, GOMAXPROCS="1"),
        text=True,
    )
    try:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
        readers = [Reader(d, mode="mmap"), Reader(d, mode="pread")]
        keys: List[bytes] = [key(i) for i in range(KEYS)]
        bodies: Dict[Tuple[int, int], bytes] = {}
        rng = random.Random(7)
        verified = [0, 0]
        wrong: List[str] = []
        last: Tuple[int, Optional[Entry]] = (0, None)
        lookups = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(256):
                i = rng.randrange(KEYS)
                m = lookups & 7 == 0  # one in eight through pread
                r = readers[1 if m else 0]
                e = r.get_stale(keys[i]) if lookups & 1 else r.get(keys[i])
                lookups += 1
                if e is None:
                    continue
                why = check(i, e, bodies)
                if why is not None:
                    wrong.append(why)
                else:
                    verified[1 if m else 0] += 1
                    last = (i, e)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        w = json.loads(out.strip().splitlines()[-1])
        stats = [r.stats.as_dict() for r in readers]
        report = {"seconds": seconds, "lookups": lookups, "verified_mmap": verified[0], "verified_pread": verified[1], "wrong": len(wrong), "writer": w, "reader_mmap": stats[0], "reader_pread": stats[1]}
        print("\ntorture:", json.dumps(report))
        with open(os.path.join(tempfile.gettempdir(), "zerohop-py-torture.json"), "w") as f:
            json.dump(report, f)
        assert not wrong, wrong[:5]
        # The checker is not vacuous: the same entry checked as another key
        # fails.
        assert check((last[0] + 1) % KEYS, last[1], bodies) is not None
        assert verified[0] > 1000 and verified[1] > 100, report
        assert w["regions_reclaimed"] > 0, "the writer never reclaimed a region: no churn"
        assert stats[0]["overruns"] + stats[0]["corrupt"] + stats[0]["torn_retries"] >= 0
        for r in readers:
            r.close()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        shutil.rmtree(d, ignore_errors=True)
