"""The app counters file (docs/format.md, "App counters"): its bytes and
lock, and the real sidecar exporting a Python process's counters on
/metrics, summed with a second Python process that is then killed."""

from __future__ import annotations

import fcntl
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import urllib.request
from typing import Dict, Iterator, Tuple

import pytest
import requests

from zerohop import counters
from zerohop.adapters.requests import ZerohopAdapter
from zerohop.client import Client

from helpers import Origin, Sidecar, go_build, wait_until

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "src"))


def _locked(path: str) -> bool:
    """Whether someone holds the file's flock (another open file
    description conflicts even in this process)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_file_layout_and_lock(tmp_path: "os.PathLike[str]") -> None:
    d = str(tmp_path)
    p = counters.Publisher(d)
    name = os.path.basename(p.path)
    assert name == f"app-{os.getpid()}-{p.instance:016x}.counters" and os.listdir(d) == [name]
    assert os.stat(p.path).st_mode & 0o777 == 0o644
    assert _locked(p.path)
    values = [1000 + i for i in range(counters.COUNT)]
    values[7] = (1 << 64) + 5  # wraps like a u64
    p.publish(values, now_ms=1234567)
    b = open(p.path, "rb").read()
    assert len(b) == 64 + 8 * 19
    magic, major, minor, hsize, count, pid, inst, created, updated, client = struct.unpack_from(
        "<8sHHIIIQQQ16s", b
    )
    assert (magic, major, minor, hsize, count, pid, inst) == (b"ZHAPPCTR", 1, 0, 64, 19, os.getpid(), p.instance)
    assert created > 1_600_000_000_000 and updated == 1234567 and client == b"python" + b"\0" * 10
    got = list(struct.unpack_from("<19Q", b, 64))
    assert got[7] == 5 and got[:7] == values[:7] and got[8:] == values[8:]
    p.close()
    assert os.path.exists(p.path) and not _locked(p.path)  # left for the sidecar to fold in
    p.publish(values)  # after close: nothing, no error


def test_client_without_writable_dir(tmp_path: "os.PathLike[str]") -> None:
    c = Client(str(tmp_path))  # no inval/ directory: serves as usual, publishes nothing
    assert c.counters_file is None and isinstance(c.counters_error, OSError)
    c.publish_counters()
    c.close()
    c = Client(str(tmp_path), counters_dir="off")
    assert c.counters_file is None and c.counters_error is None
    c.close()


def _metrics(sc: Sidecar) -> Dict[str, float]:
    with urllib.request.urlopen(f"http://{sc.admin}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: Dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("zerohop_app_"):
            name, _, v = line.rpartition(" ")
            out[name] = float(v)
    return out


_CHILD = textwrap.dedent(
    """
    import sys
    from zerohop.client import Client
    d, listen, host, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    c = Client(d, sidecar=listen, strict=True)
    for _ in range(n):
        assert c.serve("GET", "http", host, "/raw/counted") is not None
    c.serve("DELETE", "http", host, "/raw/counted")
    c.publish_counters()
    print(c.counters_file, flush=True)
    sys.stdin.read()  # until killed
    """
)


@pytest.fixture
def env() -> Iterator[Tuple[Sidecar, Origin]]:
    if shutil.which("go") is None:
        pytest.skip("needs the Go toolchain to build the sidecar")
    sc = Sidecar(go_build("./cmd/zerohop", "zerohop"))
    o = Origin()
    try:
        yield sc, o
    finally:
        o.close()
        sc.close()


def test_counters_in_sidecar_metrics(env: Tuple[Sidecar, Origin]) -> None:
    sc, o = env
    host = f"127.0.0.1:{o.port}"
    c = Client(sc.dir, sidecar=sc.listen, strict=True)
    assert c.counters_file is not None and os.path.dirname(c.counters_file) == os.path.join(sc.dir, "inval")
    s = requests.Session()
    s.trust_env = False
    s.mount("http://", ZerohopAdapter(c))
    r = s.get(o.url("/raw/counted"), timeout=10)  # a miss, through the sidecar
    assert r.status_code == 200 and "detail=shm" not in r.headers["Cache-Status"]
    assert wait_until(lambda: c.get("GET", "http", host, "/raw/counted") is not None)
    body = b""
    for _ in range(7):
        r = s.get(o.url("/raw/counted"), timeout=10)
        assert r.headers["Cache-Status"].endswith("detail=shm")
        body = r.content
    assert c.serve("GET", "http", host, "/raw/counted", [("If-None-Match", r.headers["ETag"])]).status == 304
    assert c.serve("HEAD", "http", host, "/raw/counted") is not None
    assert c.serve("POST", "http", host, "/raw/counted") is None
    assert c.serve("GET", "http", host, "/raw/counted", has_body=True) is None
    assert c.serve("GET", "http", host, "/raw/counted", [("Range", "bytes=0-1")]) is None
    assert c.serve("GET", "http", host, "/raw/counted", [("Cache-Control", "no-cache")]) is None
    assert c.serve("GET", "http", host, "/raw/counted", [("Pragma", "no-cache")]) is None
    assert (c.hits, c.not_modified, c.misses) == (9, 1, 1)
    assert (c.bypass_method, c.bypass_body, c.bypass_conditional, c.bypass_no_cache) == (1, 1, 1, 2)
    assert c.served_bytes == 7 * len(body)

    # The one-second flusher publishes without being asked.
    assert wait_until(lambda: _metrics(sc).get("zerohop_app_hits_total") == 9, timeout=10), _metrics(sc)
    m = _metrics(sc)
    assert m["zerohop_app_processes"] == 1
    assert m["zerohop_app_not_modified_total"] == 1 and m["zerohop_app_misses_total"] == 1
    for reason, n in (("method", 1), ("body", 1), ("conditional", 1), ("no_cache", 2)):
        assert m[f'zerohop_app_bypasses_total{{reason="{reason}"}}'] == n
    assert m["zerohop_app_served_bytes_total"] == 7 * len(body)
    assert m["zerohop_app_lookup_hits_total"] >= 9
    assert m["zerohop_app_torn_total"] == 0 and m["zerohop_app_corrupt_total"] == 0

    # A second Python process: its counters add up with ours; killed, they
    # are kept (folded into the departed total).
    env_ = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, sc.dir, sc.listen, host, "5"],
        env=env_,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        child_file = child.stdout.readline().decode().strip()
        assert child_file.endswith(".counters") and _locked(child_file)
        c.publish_counters()
        m = _metrics(sc)
        assert m["zerohop_app_processes"] == 2
        assert m["zerohop_app_hits_total"] == 14
        assert m['zerohop_app_bypasses_total{reason="method"}'] == 2
        child.kill()
        child.wait(10)
        assert wait_until(lambda: _metrics(sc).get("zerohop_app_processes") == 1, timeout=10)
        m = _metrics(sc)
        assert m["zerohop_app_hits_total"] == 14 and m["zerohop_app_departed_processes_total"] == 1
        assert not os.path.exists(child_file)  # folded in and removed
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)

    # Closing the client publishes a last time and departs.
    assert c.serve("GET", "http", host, "/raw/counted") is not None
    c.close()
    assert c.counters_file is not None and not _locked(c.counters_file)
    m = _metrics(sc)
    assert m["zerohop_app_hits_total"] == 15 and m["zerohop_app_processes"] == 0
    assert m["zerohop_app_departed_processes_total"] == 2
    assert not os.path.exists(c.counters_file)


def _read(path: str) -> Tuple[int, Tuple[int, ...]]:
    b = open(path, "rb").read()
    return struct.unpack_from("<I", b, 20)[0], struct.unpack_from("<19Q", b, 64)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_publishes_its_own(tmp_path: "os.PathLike[str]") -> None:
    """A pre-forking server: the child publishes its own counts, from zero,
    in its own file; the parent's file stays the parent's and locked."""
    d = str(tmp_path)
    os.mkdir(os.path.join(d, "inval"))
    c = Client(d)
    for _ in range(2):
        c.serve("POST", "http", "h", "/")
    parent_file = c.counters_file
    assert parent_file is not None
    pid = os.fork()
    if pid == 0:  # the child: exit status says what went wrong
        code = 0
        try:
            if c.counters_file in (None, parent_file) or c.bypass_method != 0:
                code = 2
            else:
                for _ in range(3):
                    c.serve("PUT", "http", "h", "/")
                c.close()
        except BaseException:
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    c.publish_counters()
    files = sorted(os.listdir(os.path.join(d, "inval")))
    assert len(files) == 2
    child_file = [os.path.join(d, "inval", f) for f in files if f.startswith(f"app-{pid}-")][0]
    assert _read(child_file)[0] == pid and _read(child_file)[1][3] == 3 and not _locked(child_file)
    assert _read(parent_file)[0] == os.getpid() and _read(parent_file)[1][3] == 2 and _locked(parent_file)
    c.close()
    assert not _locked(parent_file)
