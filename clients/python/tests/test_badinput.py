"""Files that change under a live reader: truncated (which would raise
SIGBUS in an unguarded mmap reader), replaced by a new file, abandoned.
A miss or a clear exception, never a wrong answer, never a crash."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from typing import Any, Dict

import pytest

from zerohop import Reader

from conftest import GOLDEN_DIR

LIVE = os.path.join(GOLDEN_DIR, "cases", "live.shm")
PLAIN_KEY = "03004745540400687474700b006578616d706c652e636f6d010000002f"


@pytest.mark.parametrize("mode", ["mmap", "pread"])
def test_truncated_under_the_reader(tmp_path: Any, golden: Dict[str, Any], mode: str) -> None:
    """Truncate the file while it is mapped. Run in a child process: if
    the reader touched a page past the new end, SIGBUS would kill it (the
    test checks the exit status, so a crash fails the test instead of the
    test run)."""
    shutil.copy(LIVE, tmp_path / "cache.shm")
    now = golden["now_ms"]
    script = textwrap.dedent(
        f"""
        import json, os, sys
        from zerohop import Reader
        r = Reader({str(tmp_path)!r}, mode={mode!r})
        key = bytes.fromhex({PLAIN_KEY!r})
        before = r.get(key, {now}) is not None
        os.truncate({str(tmp_path / "cache.shm")!r}, 4096)  # the index and arena pages are gone
        # Lookups at later times: the recheck (every 100 ms) sees the short
        # file before anything is read from the mapping.
        after = [r.get(key, {now} + 200 + i) is not None for i in range(50)]
        print(json.dumps({{"before": before, "after": after, "stats": r.stats.as_dict()}}))
        """
    )
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (p.returncode, p.stderr)
    out = json.loads(p.stdout)
    assert out["before"] is True
    assert not any(out["after"])
    assert out["stats"]["faults"] >= 1


def test_replaced_file_is_remapped(tmp_path: Any, golden: Dict[str, Any]) -> None:
    """A new writer renames a new file over the path and marks the old one
    abandoned (state 3): the reader maps the new file and serves from it."""
    now = golden["now_ms"]
    path = tmp_path / "cache.shm"
    shutil.copy(LIVE, path)
    key = bytes.fromhex(PLAIN_KEY)
    r = Reader(str(tmp_path))
    e = r.get(key, now)
    assert e is not None and e.body == b"Hello, zerohop!\n"
    # The new file: the same content with another (fresh) heartbeat.
    new = bytearray(open(LIVE, "rb").read())
    new[320:328] = (now + 5000).to_bytes(8, "little")
    tmp = tmp_path / "cache.shm.tmp"
    tmp.write_bytes(bytes(new))
    os.rename(tmp, path)
    # The old file, still mapped, is abandoned by the new writer.
    old_state = r._f
    assert old_state is not None
    with open(f"/proc/self/fd/{old_state.fd}", "r+b") as f:
        f.seek(128)
        f.write((3).to_bytes(4, "little"))
    assert r.get(key, now + 1) is None  # abandoned: not served...
    assert r.stats.writer_stale == 1
    assert r.get(key, now + 2) is None and r.stats.remaps == 0  # rechecks are rate-limited
    e = r.get(key, now + 150)  # ...the next recheck finds the new file
    assert e is not None and r.stats.remaps == 1
    r.close()
    assert r.get(key, now + 300) is None


def test_vanished_file(tmp_path: Any, golden: Dict[str, Any]) -> None:
    now = golden["now_ms"]
    shutil.copy(LIVE, tmp_path / "cache.shm")
    r = Reader(str(tmp_path), mode="pread")
    key = bytes.fromhex(PLAIN_KEY)
    assert r.get(key, now) is not None
    os.unlink(tmp_path / "cache.shm")
    # Unlinked but still open: the old file keeps answering until its
    # writer abandons it or its heartbeat goes stale.
    assert r.get(key, now + 1) is not None
    assert r.get(key, now + 3000) is None and r.stats.writer_stale == 1


@pytest.mark.parametrize("mode", ["mmap", "pread"])
def test_close_under_concurrent_lookups(tmp_path: Any, golden: Dict[str, Any], mode: str) -> None:
    """close() while other threads look up: they get hits, then misses,
    never an exception."""
    import threading

    now = golden["now_ms"]
    shutil.copy(LIVE, tmp_path / "cache.shm")
    r = Reader(str(tmp_path), mode=mode)
    key = bytes.fromhex(PLAIN_KEY)
    errors: list = []
    results = {"hit": 0, "miss": 0}
    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.is_set():
                e = r.get(key, now)
                if e is None:
                    results["miss"] += 1
                else:
                    assert e.body == b"Hello, zerohop!\n"
                    results["hit"] += 1
        except BaseException as ex:  # noqa: BLE001 - the test reports any
            errors.append(ex)

    ts = [threading.Thread(target=run) for _ in range(3)]
    for t in ts:
        t.start()
    wait = threading.Event()
    wait.wait(0.05)
    r.close()
    wait.wait(0.05)
    stop.set()
    for t in ts:
        t.join()
    assert not errors, errors
    assert results["hit"] > 0 and results["miss"] > 0


@pytest.mark.parametrize("mode", ["mmap", "pread"])
def test_random_damage_never_gives_a_wrong_entry(tmp_path: Any, golden: Dict[str, Any], mode: str) -> None:
    """Flip random bytes of the index and arena of cases/live.shm: every
    lookup must miss or return exactly the golden entry (only its freshness
    may change: the slot's fresh-until is not checksummed), and nothing may
    raise. 300 damaged files per mode."""
    import base64
    import random

    from zerohop import ShmError

    now = golden["now_ms"]
    orig = open(LIVE, "rb").read()
    wants = {
        l["key_hex"]: base64.b64decode(l["body_base64"])
        for l in golden["lookups"]
        if l["expect"] != "miss"
    }
    rng = random.Random(16)
    path = tmp_path / "cache.shm"
    served = 0
    for _ in range(300):
        b = bytearray(orig)
        for _ in range(rng.randint(1, 8)):
            # Mostly the index and the written part of the arena.
            off = rng.randrange(4096, 4096 + 1024 + 6000) if rng.random() < 0.9 else rng.randrange(len(b))
            b[off] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(b))
        try:
            r = Reader(str(tmp_path), mode=mode)
        except ShmError:
            continue
        for l in golden["lookups"]:
            e = r.get_stale(bytes.fromhex(l["key_hex"]), now)
            if e is None:
                continue
            assert l["key_hex"] in wants, l["name"]
            assert e.body == wants[l["key_hex"]] and e.key.hex() == l["key_hex"], l["name"]
            served += 1
        r.close()
    assert served > 1000
