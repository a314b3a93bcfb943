"""httpx transports (sync and async): fresh hits from the shared cache, the
rest through the sidecar.

    import httpx, zerohop
    from zerohop.adapters.httpx import ZerohopTransport, AsyncZerohopTransport

    client = httpx.Client(transport=ZerohopTransport(zerohop.Client()))
    aclient = httpx.AsyncClient(transport=AsyncZerohopTransport(zerohop.Client()))
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import httpx

from ..client import CachedResponse, Client


def _serve(client: Client, request: httpx.Request) -> Optional[CachedResponse]:
    url = request.url
    headers: List[Tuple[str, str]] = [
        (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
    ]
    host = request.headers.get("Host") or url.netloc.decode("ascii").rpartition("@")[2]
    # The target exactly as httpx puts it on the request line.
    target = url.raw_path
    has_body = bool(request.headers.get("Content-Length", "0") != "0" or "Transfer-Encoding" in request.headers)
    return client.serve(request.method, url.scheme, host, target, headers, has_body=has_body)


def _response(cr: CachedResponse, request: httpx.Request) -> httpx.Response:
    # A raw stream, as a network transport returns: httpx decodes a stored
    # Content-Encoding when the app reads the body.
    return httpx.Response(
        cr.status,
        headers=cr.headers,
        stream=httpx.ByteStream(cr.body),
        request=request,
        extensions={"http_version": b"HTTP/1.1", "zerohop": "shm"},
    )


def _proxy_transport_kwargs(client: Client) -> dict:  # type: ignore[type-arg]
    return {"proxy": httpx.Proxy(client.sidecar_url)}


class ZerohopTransport(httpx.BaseTransport):
    """An httpx transport that answers fresh hits from the mapping and
    sends the rest to the sidecar (its forward proxy) through ``forward``,
    by default an httpx.HTTPTransport with the sidecar as proxy."""

    def __init__(self, client: Optional[Client] = None, forward: Optional[httpx.BaseTransport] = None) -> None:
        self.client = client if client is not None else Client()
        self.forward = forward if forward is not None else httpx.HTTPTransport(**_proxy_transport_kwargs(self.client))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        cr = _serve(self.client, request)
        if cr is not None:
            return _response(cr, request)
        return self.forward.handle_request(request)

    def close(self) -> None:
        self.forward.close()


class AsyncZerohopTransport(httpx.AsyncBaseTransport):
    """The async form of ZerohopTransport. A lookup takes microseconds and
    makes no system call, so it runs inline on the event loop."""

    def __init__(self, client: Optional[Client] = None, forward: Optional[httpx.AsyncBaseTransport] = None) -> None:
        self.client = client if client is not None else Client()
        self.forward = (
            forward if forward is not None else httpx.AsyncHTTPTransport(**_proxy_transport_kwargs(self.client))
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        cr = _serve(self.client, request)
        if cr is not None:
            return _response(cr, request)
        return await self.forward.handle_async_request(request)

    async def aclose(self) -> None:
        await self.forward.aclose()
