"""One request and its whole answer, on aiohttp's connection pool: `KubeClient`'s wire.

Why not httpx, as before: `KubeClient` sent every request through httpx's client onto
aiohttp's pool (`transport.AiohttpTransport`), and httpx's own request and response
models, URL merging, cookie extraction and header handling cost ~0.35 ms of the
operator's ~4.5 ms of CPU per workflow step (`make bench-profile`), and ~7 % of the
sidecar's CPU at B4's load, for nothing the client used. This is the little the client
does use: a method, a path and query, headers and a body out; status, headers and the
whole body back.

Delivery errors say what a caller may assume about the request, as the AgentKit client's
at-most-once accounting needs them to (`transport.py` keeps the same split for httpx):

- `NotSent`: it never left (no connection, or none opened in time); safe to send again.
- `Lost`: it went out and the answer did not come back (timeout, reset, hang-up); the
  server may have acted on it. The API server's writes are fenced (resourceVersion,
  `test` operations, preconditions), which is what makes `KubeClient` retry these too.
- Either one that ran out of time is also `ConnectTimedOut` or `AnswerTimedOut`, for
  callers that tell a slow server from an unreachable one (the AgentKit client).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import yarl


class DeliveryError(Exception):
    """The request got no answer."""


class NotSent(DeliveryError):
    """The request never reached the server."""


class Lost(DeliveryError):
    """The request went out and its answer was lost: it may have taken effect."""


class ConnectTimedOut(NotSent):
    """No connection opened (or came free in the pool) in time."""


class AnswerTimedOut(Lost):
    """The request went out and the server was silent for the read timeout."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer, read whole."""

    status: int
    reason: str
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class Exchange(Protocol):
    """Sends one request to the server and returns its answer (or raises `DeliveryError`)."""

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        read_timeout: float | None = None,
    ) -> Answer: ...

    async def aclose(self) -> None: ...


# Headers aiohttp would add itself; callers' own say what they want, and an answer
# compressed for a loopback connection only costs both sides CPU.
_AUTO_HEADERS_SKIPPED = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


def pooled_session(
    *,
    max_connections: int,
    keepalive_timeout: float,
    ssl_context: ssl.SSLContext | bool,
    decompress: bool = True,
) -> aiohttp.ClientSession:
    """An aiohttp session on one pool: at most `max_connections` open, each kept alive for
    `keepalive_timeout` idle seconds, no cookies, no headers of aiohttp's own. Call it
    inside the running event loop (the session belongs to it)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=max_connections, keepalive_timeout=keepalive_timeout, ssl=ssl_context
        ),
        auto_decompress=decompress,
        skip_auto_headers=_AUTO_HEADERS_SKIPPED,
        cookie_jar=aiohttp.DummyCookieJar(),
    )


class AiohttpExchange:
    """Requests to `server` on one aiohttp pool: at most `max_connections` open, each kept
    alive for `keepalive_timeout` idle seconds (so a burst pays no TLS handshakes). A read
    silent for `timeout` seconds, or no connection within `connect_timeout`, fails it."""

    def __init__(
        self,
        server: str,
        *,
        ssl_context: ssl.SSLContext | bool = True,
        max_connections: int,
        keepalive_timeout: float,
        timeout: float,
        connect_timeout: float = 5.0,
    ) -> None:
        self._server = server.rstrip("/")
        self._ssl = ssl_context
        self._max_connections = max_connections
        self._keepalive_timeout = keepalive_timeout
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None

    def _client_session(self) -> aiohttp.ClientSession:
        # Made on first use so that it belongs to the running event loop.
        if self._session is None:
            self._session = pooled_session(
                max_connections=self._max_connections,
                keepalive_timeout=self._keepalive_timeout,
                ssl_context=self._ssl,
            )
        return self._session

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        read_timeout: float | None = None,
    ) -> Answer:
        url = yarl.URL(self._server + path, encoded=True)
        if params:
            url = url.with_query(dict(params))
        read = self._timeout if read_timeout is None else read_timeout
        try:
            async with self._client_session().request(
                method,
                url,
                headers=dict(headers or {}),
                data=body,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(
                    # Waiting for a pooled connection counts too (`connect`).
                    connect=max(read, self._connect_timeout),
                    sock_connect=min(read, self._connect_timeout),
                    sock_read=read,
                ),
            ) as response:
                content = await response.read()
                return Answer(response.status, response.reason or "", response.headers, content)
        except aiohttp.ConnectionTimeoutError as exc:  # before its parent, ServerTimeoutError
            raise ConnectTimedOut(f"{method} {path}: no connection in time: {exc}") from exc
        except aiohttp.ClientConnectorError as exc:
            raise NotSent(f"{method} {path}: {exc}") from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise AnswerTimedOut(f"{method} {path}: no answer in time") from exc
        except aiohttp.ClientError as exc:
            # A reset, broken pipe or hang-up on an open connection: the request may have
            # been read (failing to open one is ClientConnectorError, above).
            raise Lost(f"{method} {path}: {exc!r}") from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
