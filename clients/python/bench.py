"""Benchmark: a 1 KiB zero-hop hit against the same hit over loopback HTTP.

Starts the real sidecar (`go build ./cmd/zerohop`) and a Python origin on
127.0.0.1, warms one ~1 KiB response into the cache, then measures in
interleaved rounds, in one run:

  shm hit (xxhash)     Client.serve: eligibility, key, lookup, checks and
                       the response (status, headers with Age and
                       Cache-Status, body) from the mapping
  shm hit (pure XXH64) the same with the pure-Python hash
  shm hit (pread)      the same through positional reads (xxhash)
  reader.get (xxhash)  the bare lookup of a prepared key
  HTTP hit             http.client keep-alive GET through the sidecar's
                       forward proxy, answered from the sidecar's cache
  requests HTTP hit    requests.Session through the sidecar (no adapter)
  requests shm hit     requests.Session with ZerohopAdapter

and prints p50/p99 in µs and each as a ratio to the HTTP hit.

    python bench.py [--rounds 5] [--n 4000]
"""

from __future__ import annotations

import argparse
import gc
import http.client
import os
import sys
import time
from typing import Callable, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "tests"))
sys.path.insert(0, os.path.join(HERE, "src"))

import requests  # noqa: E402

import zerohop.reader as zr  # noqa: E402
from helpers import Origin, Sidecar, go_build, wait_until  # noqa: E402
from zerohop import XXH64_IMPLEMENTATION, primary_key  # noqa: E402
from zerohop._xxh64 import xxh64_pure  # noqa: E402
from zerohop.adapters.requests import ZerohopAdapter  # noqa: E402
from zerohop.client import Client  # noqa: E402


def measure(f: Callable[[], object], n: int) -> List[int]:
    out = []
    pc = time.perf_counter_ns
    for _ in range(n):
        t = pc()
        f()
        out.append(pc() - t)
    return out


def pct(xs: List[int], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))] / 1000.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=4000)
    a = ap.parse_args()
    if XXH64_IMPLEMENTATION != "xxhash":
        print("note: the xxhash package is not installed; the 'xxhash' rows use the pure-Python hash")
    sc = Sidecar(go_build("./cmd/zerohop", "zerohop"))
    o = Origin()
    try:
        host = f"127.0.0.1:{o.port}"
        path = "/raw/bench"  # one 1 KiB entry (not compressible: no Vary variants)
        url = o.url(path)
        conn = http.client.HTTPConnection(sc.listen)
        hdrs = {"Host": host, "Accept-Encoding": "identity"}

        def http_get() -> bytes:
            conn.request("GET", url, headers=hdrs)
            r = conn.getresponse()
            b = r.read()
            assert r.status == 200
            return b

        first = http_get()
        items = list(hdrs.items())
        c = Client(sc.dir, sidecar=sc.listen, strict=True)
        cp = Client(sc.dir, sidecar=sc.listen, strict=True, mode="pread")
        assert wait_until(lambda: c.serve("GET", "http", host, path, items) is not None), "never stored"
        cr = c.serve("GET", "http", host, path, items)
        assert cr is not None and cr.body == first
        cs = http_get()
        assert cs == first
        entry_len = len(cr.entry.raw)

        # trust_env=False in both sessions: requests otherwise scans the whole
        # environment for proxy settings on every request (~0.5 ms here),
        # which would swamp what is measured.
        s_plain = requests.Session()
        s_plain.trust_env = False
        s_plain.proxies = {"http": "http://" + sc.listen}
        s_plain.headers["Accept-Encoding"] = "identity"
        s_zh = requests.Session()
        s_zh.trust_env = False
        s_zh.mount("http://", ZerohopAdapter(c))
        s_zh.headers["Accept-Encoding"] = "identity"
        assert "detail=shm" in s_zh.get(url).headers["Cache-Status"]

        # The variant key the client reaches through the Vary marker, if any.
        key = primary_key("GET", "http", host, path)
        e = c.reader.get(key)
        if e is not None and e.flags & 1:
            from zerohop.key import header_getter, vary_key

            key = vary_key(key, e.vary_block, header_getter(items))
        r = c.reader
        assert r.get(key) is not None

        fast = zr.xxh64

        def shm_pure() -> object:
            return c.serve("GET", "http", host, path, items)

        cases: Dict[str, Callable[[], object]] = {
            "shm hit (xxhash)": lambda: c.serve("GET", "http", host, path, items),
            "shm hit (pure XXH64)": shm_pure,
            "shm hit (pread)": lambda: cp.serve("GET", "http", host, path, items),
            "reader.get (xxhash)": lambda: r.get(key),
            "HTTP hit (http.client)": http_get,
            "requests: shm hit": lambda: s_zh.get(url).content,
            "requests: HTTP hit": lambda: s_plain.get(url).content,
        }
        res: Dict[str, List[int]] = {k: [] for k in cases}
        gc.disable()
        for _ in range(a.rounds):
            for name, f in cases.items():
                zr.xxh64 = xxh64_pure if f is shm_pure else fast
                n = a.n if "requests" not in name and "HTTP" not in name else max(200, a.n // 10)
                f()
                res[name] += measure(f, n)
        zr.xxh64 = fast
        gc.enable()
        base = pct(res["HTTP hit (http.client)"], 0.5)
        base_rq = pct(res["requests: HTTP hit"], 0.5)
        print(f"entry {entry_len} bytes, body {len(first)} bytes; xxhash: {XXH64_IMPLEMENTATION}; "
              f"Python {sys.version.split()[0]}; load {os.getloadavg()[0]:.2f}")
        print(f"{'case':26} {'n':>6} {'p50 µs':>9} {'p99 µs':>9} {'p50 / HTTP p50':>15}")
        for name, xs in res.items():
            b = base_rq if name.startswith("requests") else base
            print(f"{name:26} {len(xs):6d} {pct(xs, 0.5):9.2f} {pct(xs, 0.99):9.2f} {pct(xs, 0.5) / b:14.3f}x")
        print(f"(requests rows are relative to the requests HTTP hit, {base_rq:.1f} µs; the others to http.client's, {base:.1f} µs)")
        st = c.stats()
        print("client stats:", {k: v for k, v in st.items() if k != "cache"}, "reader:", r.stats)
    finally:
        o.close()
        sc.close()


if __name__ == "__main__":
    main()
