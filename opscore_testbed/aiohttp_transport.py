"""An httpx transport that sends requests through aiohttp's connection pool: the AgentKit
simulator's client towards the agents it forwards tasks to. (It was the operator's, under
`KubeClient` and then the AgentKit client, until both moved to `opscore_kube.exchange`.)

Why: httpcore's pool rescans and probes every pooled connection on each request and on each
response close (`_assign_requests_to_connections`, `is_idle`, `has_expired`), so its CPU
cost per request grows with the number of connections and requests in flight: ~1 ms and
more under load on the benchmark machines, where aiohttp's pool costs ~0.2 ms. With
`max_keepalive_connections` below `max_connections` it also closes connections it just
used and opens new ones, each a fresh TLS handshake towards the API server. Profiles of the
sidecar at 80 reports/s spent 60 % of its CPU in the PATCH path, most of it in that pool.

Callers keep the httpx API (requests, responses, `httpx.HTTPError` subclasses): aiohttp
errors surface as the httpx errors that say the same about delivery (ConnectError and
ConnectTimeout: never sent; ReadTimeout, ReadError, RemoteProtocolError: maybe acted on),
as the operator's `exchange` splits them into NotSent and Lost. Responses are read whole,
so this is for ordinary request/response calls, not for streams that never end (watches).
"""

from __future__ import annotations

import ssl

import aiohttp
import httpx
import yarl

from opscore_kube.exchange import pooled_session


class AiohttpTransport(httpx.AsyncBaseTransport):
    """httpx over aiohttp: at most `max_connections` open, all of them kept alive for
    `keepalive_timeout` seconds of idleness (no keep-alive cap below the limit)."""

    # aiohttp computes these itself from the body and URL.
    _COMPUTED = frozenset({"host", "content-length", "transfer-encoding", "connection"})

    def __init__(
        self,
        *,
        max_connections: int,
        keepalive_timeout: float = 4.0,
        ssl_context: ssl.SSLContext | bool = True,
    ) -> None:
        self._max_connections = max_connections
        self._keepalive_timeout = keepalive_timeout
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    def _client_session(self) -> aiohttp.ClientSession:
        # Made on first use so that it belongs to the running event loop.
        if self._session is None:
            self._session = pooled_session(
                max_connections=self._max_connections,
                keepalive_timeout=self._keepalive_timeout,
                ssl_context=self._ssl,
                decompress=False,  # httpx decodes
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        headers = [
            (key, value)
            for key, value in request.headers.multi_items()
            if key.lower() not in self._COMPUTED
        ]
        body = await request.aread()
        try:
            async with self._client_session().request(
                request.method,
                yarl.URL(str(request.url), encoded=True),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeouts.get("connect"), sock_read=timeouts.get("read")
                ),
            ) as response:
                content = await response.read()
                return httpx.Response(
                    response.status, headers=response.raw_headers, content=content
                )
        except aiohttp.ConnectionTimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc), request=request) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
            # The connection ended after the request went out: the server may have acted
            # on it, as with httpx's own RemoteProtocolError.
            raise httpx.RemoteProtocolError(str(exc) or repr(exc), request=request) from exc
        except aiohttp.ClientOSError as exc:
            # A reset or broken pipe on an open connection (failing to open one is
            # ClientConnectorError, above): the request may have been read.
            raise httpx.ReadError(str(exc) or repr(exc), request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.NetworkError(str(exc) or repr(exc), request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
