"""A requests transport adapter: fresh hits from the shared cache, the rest
through the sidecar.

    import requests, zerohop
    from zerohop.adapters.requests import ZerohopAdapter

    session = requests.Session()
    adapter = ZerohopAdapter(zerohop.Client("/var/run/zerohop"))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
"""

from __future__ import annotations

import io
from typing import Any, List, Mapping, Optional, Tuple, Union
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPResponse
from urllib3._collections import HTTPHeaderDict

from ..client import Client


class ZerohopAdapter(HTTPAdapter):
    """An HTTPAdapter that answers fresh hits from the mapping (with Age
    and Cache-Status, as the Go client does) and forwards everything else
    to the sidecar as its HTTP proxy (https through CONNECT)."""

    def __init__(self, client: Optional[Client] = None, **kwargs: Any) -> None:
        self.client = client if client is not None else Client()
        super().__init__(**kwargs)

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Union[None, float, Tuple[float, float], Tuple[float, None]] = None,
        verify: Union[bool, str] = True,
        cert: Union[None, str, Tuple[str, str]] = None,
        proxies: Optional[Mapping[str, str]] = None,
    ) -> requests.Response:
        resp = self._from_cache(request)
        if resp is not None:
            return resp
        px = self.client.sidecar_url
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies={"http": px, "https": px})

    def _from_cache(self, request: requests.PreparedRequest) -> Optional[requests.Response]:
        url = request.url or ""
        u = urlsplit(url)
        headers: List[Tuple[str, str]] = [
            (k, v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in request.headers.items()
        ]
        host = request.headers.get("Host") or u.netloc.rpartition("@")[2]
        target = request.path_url  # the path and query as requests sends them
        has_body = request.body is not None and request.body != b"" and request.body != ""
        cr = self.client.serve(
            request.method or "GET",
            u.scheme or "http",
            host,
            target,
            headers,
            has_body=has_body,
        )
        if cr is None:
            return None
        hd = HTTPHeaderDict()
        for n, v in cr.headers:
            hd.add(n, v)
        raw = HTTPResponse(
            body=io.BytesIO(cr.body),
            headers=hd,
            status=cr.status,
            preload_content=False,
            decode_content=True,  # a stored gzip variant is decoded like a network one
            request_method=request.method,
        )
        resp = self.build_response(request, raw)
        resp.reason = _REASONS.get(cr.status, "")
        return resp


_REASONS = {
    200: "OK",
    203: "Non-Authoritative Information",
    204: "No Content",
    206: "Partial Content",
    300: "Multiple Choices",
    301: "Moved Permanently",
    304: "Not Modified",
    308: "Permanent Redirect",
    404: "Not Found",
    405: "Method Not Allowed",
    410: "Gone",
    414: "URI Too Long",
    501: "Not Implemented",
}
