"""A urllib3 pool manager: fresh hits from the shared cache, the rest
through the sidecar (a urllib3.ProxyManager for it).

    import zerohop
    from zerohop.adapters.urllib3 import ZerohopPoolManager

    http = ZerohopPoolManager(zerohop.Client())
    r = http.request("GET", "http://catalog.internal/items/42")
"""

from __future__ import annotations

import io
from typing import Any, List, Optional, Tuple

import urllib3
from urllib3 import HTTPResponse
from urllib3._collections import HTTPHeaderDict
from urllib3.util import parse_url

from ..client import Client


class ZerohopPoolManager(urllib3.ProxyManager):
    """A ProxyManager with the sidecar as proxy that answers fresh hits of
    GET and HEAD requests from the mapping first."""

    def __init__(self, client: Optional[Client] = None, **kw: Any) -> None:
        self.client = client if client is not None else Client()
        super().__init__(self.client.sidecar_url, **kw)

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> Any:  # type: ignore[override]
        u = parse_url(url)
        raw_headers = kw.get("headers") or self.headers or {}
        headers: List[Tuple[str, str]] = [(str(k), str(v)) for k, v in dict(raw_headers).items()]
        host = dict((k.lower(), v) for k, v in headers).get("host") or (u.netloc or "").rpartition("@")[2]
        target = u.request_uri  # path and query as urllib3 sends them
        cr = self.client.serve(method, u.scheme or "http", host, target, headers, has_body=kw.get("body") is not None)
        if cr is None:
            return super().urlopen(method, url, redirect=redirect, **kw)
        hd = HTTPHeaderDict()
        for n, v in cr.headers:
            hd.add(n, v)
        return HTTPResponse(
            body=io.BytesIO(cr.body),
            headers=hd,
            status=cr.status,
            preload_content=kw.get("preload_content", True),
            decode_content=kw.get("decode_content", True),
            request_method=method,
            request_url=url,
        )
