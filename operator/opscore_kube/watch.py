"""A Kubernetes watch: the changes to one collection from a resourceVersion on, as
`(type, object)` pairs read off one long HTTP response (newline-delimited JSON).

Why not through `KubeClient._request`: that reads every response whole, and a watch never
ends until its `timeoutSeconds` is up. So a watch gets its own aiohttp session (one
connection per open watch, outside the request pool's limit) and yields each event as its
line arrives. Lines are split here, not by aiohttp's `readline`, whose buffer limit (64 KiB
by default) a Workflow with a long status would pass.

What a caller must handle: `errors.Gone` (410: the version is older than the API server keeps;
list again), `KubeApiError` for any other error answer or `ERROR` event, and
`aiohttp.ClientError` / `TimeoutError` when the connection breaks. A response that simply
ends (the server's timeout) ends the iteration; the caller watches again from the last
version it saw (bookmarks included).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import yarl

from opscore_kube.connection import Connection
from opscore_kube.errors import KubeApiError, error_for
from opscore_kube.resources import Resource

Body = dict[str, Any]

#: The API server ends a watch after this many seconds (its `timeoutSeconds`); the client
#: gives up on a connection silent for this much longer (bookmarks come about once a
#: minute, so only a dead connection is that quiet).
WATCH_SECONDS = 300
SILENCE_GRACE_SECONDS = 30


class WatchStream:
    """Opens watches on the API server of `connection`; `aclose` closes them all."""

    def __init__(self, connection: Connection, *, user_agent: str = "opscore") -> None:
        self._conn = connection
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None

    def _client_session(self) -> aiohttp.ClientSession:
        # Made on first use so that it belongs to the running event loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ssl=self._conn.ssl_context),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def aclose(self) -> None:
        """Close every connection this stream opened."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def events(
        self,
        resource: Resource,
        namespace: str | None,
        resource_version: str,
        *,
        timeout_seconds: int = WATCH_SECONDS,
    ) -> AsyncIterator[tuple[str, Body]]:
        """Every event after `resource_version`: ADDED, MODIFIED, DELETED and BOOKMARK (an
        object that carries only the newest `metadata.resourceVersion`)."""
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        auth = self._conn.auth_header()
        if auth:
            headers["Authorization"] = auth
        params = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        url = yarl.URL(self._conn.server + resource.path(namespace), encoded=True)
        async with self._client_session().get(
            url.with_query(params),
            headers=headers,
            timeout=aiohttp.ClientTimeout(
                sock_connect=5.0, sock_read=timeout_seconds + SILENCE_GRACE_SECONDS
            ),
        ) as response:
            if response.status >= 400:
                raise _error(response.status, await response.text())
            pending = b""
            async for chunk in response.content.iter_any():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield _event(json.loads(line))


def _event(event: Body) -> tuple[str, Body]:
    kind = str(event.get("type", ""))
    obj: Body = event.get("object") or {}
    if kind == "ERROR":  # a Status object: the watch cannot go on
        status = int(obj.get("code") or 500)
        raise error_for(status, str(obj.get("reason", "")), str(obj.get("message", "")))
    return kind, obj


def _error(status: int, text: str) -> KubeApiError:
    try:
        body = json.loads(text)
        return error_for(status, str(body.get("reason", "")), str(body.get("message", "")))
    except (ValueError, AttributeError):
        return error_for(status, "", text[:500])
