"""A sidecar route's cache key parts (docs/routes.md, docs/format.md "Route
key parts") need nothing of the Python client: selected request headers
come in the Vary marker's block, which the client already follows, and a
query the route would normalise misses here and goes to the sidecar. The
real sidecar, a real origin, and the client reading the mapping."""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Iterator, Optional, Tuple

import pytest
import requests

from zerohop.client import Client
from zerohop.entry import Entry

from helpers import Origin, Sidecar, go_build, wait_until

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain to build the sidecar")


@pytest.fixture(scope="module")
def env() -> Iterator[Tuple[Sidecar, Origin]]:
    o = Origin()
    d = tempfile.mkdtemp(prefix="zerohop-route-key-")
    cfg = os.path.join(d, "zerohop.yaml")
    with open(cfg, "w") as f:
        f.write(
            "listeners:\n"
            "  - {name: forward, mode: forward}\n"
            "clusters:\n"
            f"  - {{name: origin, endpoints: [{{url: 'http://127.0.0.1:{o.port}'}}]}}\n"
            "routes:\n"
            "  - name: tenants\n"
            "    match: {host: 127.0.0.1, path_prefix: /raw/t/}\n"
            "    cluster: origin\n"
            "    cache: {key: {headers: [X-Tenant], query: {drop: [utm_source], sort: true}}}\n"
        )
    old = os.environ.get("ZEROHOP_CONFIG")
    os.environ["ZEROHOP_CONFIG"] = cfg
    try:
        sc = Sidecar(go_build("./cmd/zerohop", "zerohop"))
    finally:
        if old is None:
            del os.environ["ZEROHOP_CONFIG"]
        else:
            os.environ["ZEROHOP_CONFIG"] = old
    try:
        yield sc, o
    finally:
        o.close()
        sc.close()
        shutil.rmtree(d, ignore_errors=True)


def test_route_key_headers_and_query(env: Tuple[Sidecar, Origin]) -> None:
    sc, o = env
    c = Client(sc.dir, sidecar=sc.listen, strict=True)
    proxies = {"http": f"http://{sc.listen}"}
    host = f"127.0.0.1:{o.port}"

    def fetch(target: str, tenant: str) -> requests.Response:
        return requests.get(f"http://{host}{target}", headers={"X-Tenant": tenant}, proxies=proxies, timeout=10)

    r1 = fetch("/raw/t/a?b=2&utm_source=x&a=1", "t1")
    r2 = fetch("/raw/t/a?a=1&b=2", "t2")
    assert r1.status_code == 200 and r2.status_code == 200
    assert b"#1" in r1.content and b"#2" not in r1.content

    def entry(target: str, tenant: str) -> Optional[Entry]:
        return c.get("GET", "http", host, target, [("X-Tenant", tenant)] if tenant else [])

    assert wait_until(lambda: entry("/raw/t/a?a=1&b=2", "t2") is not None)
    e1, e2 = entry("/raw/t/a?a=1&b=2", "t1"), entry("/raw/t/a?a=1&b=2", "t2")
    assert e1 is not None and e2 is not None
    assert bytes(e1.body) == r1.content and bytes(e2.body) == r2.content
    # Never another tenant's entry; and a target the route would normalise
    # is a miss here (the sidecar answers it).
    assert entry("/raw/t/a?a=1&b=2", "t3") is None
    assert entry("/raw/t/a?a=1&b=2", "") is None
    assert entry("/raw/t/a?b=2&utm_source=x&a=1", "t1") is None
    r = fetch("/raw/t/a?utm_source=y&b=2&a=1", "t1")
    assert "hit" in r.headers["Cache-Status"] and r.content == r1.content
    c.close()
