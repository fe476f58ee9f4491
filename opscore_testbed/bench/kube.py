"""The benchmark's view of the API server: Ops-Core's client plus `/metrics` and pprof.

The operator and the sidecar never read non-resource paths, so these reads live here,
with the code that measures, not in production code.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx

from opscore_kube import Connection, KubeApiError, KubeClient, load_connection
from opscore_kube.errors import error_for

Body = dict[str, Any]


class BenchKube(KubeClient):
    """`KubeClient` with `raw_get` and `raw_bytes`; errors are the same `KubeApiError` classes."""

    def __init__(self, connection: Connection, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._connection = connection
        self._streams = httpx.AsyncClient(
            base_url=connection.server,
            verify=connection.ssl_context,
            timeout=httpx.Timeout(10.0, connect=5.0),
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
            headers={"Accept": "application/json", "User-Agent": "opscore-bench"},
        )

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None = None, **kwargs: Any) -> BenchKube:
        return cls(load_connection(kubeconfig), **kwargs)

    async def aclose(self) -> None:
        await super().aclose()
        await self._streams.aclose()

    async def raw_get(self, path: str) -> str:
        """GET a non-resource path (e.g. /metrics) as text (one try, no retries)."""
        resp = await self._streams.get(path, headers=self._auth())
        if resp.status_code >= 400:
            raise _error_from(resp)
        return resp.text

    async def raw_bytes(self, path: str, *, within: float = 10.0) -> bytes:
        """GET a non-resource path as bytes, the answer due `within` seconds (e.g.
        /debug/pprof/profile answers only after its `seconds`)."""
        resp = await self._streams.get(
            path, headers=self._auth(), timeout=httpx.Timeout(within, connect=5.0)
        )
        if resp.status_code >= 400:
            raise _error_from(resp)
        return resp.content

    @contextlib.asynccontextmanager
    async def watch_lines(self, path: str) -> AsyncIterator[AsyncIterator[str]]:
        """A watch held open on `path` (e.g. `.../configmaps?watch=1`): its event lines,
        unparsed, for as long as the caller reads them (no read timeout)."""
        async with self._streams.stream(
            "GET", path, headers=self._auth(), timeout=httpx.Timeout(None, connect=5.0)
        ) as resp:
            if resp.status_code >= 400:
                await resp.aread()
                raise _error_from(resp)
            yield resp.aiter_lines()

    def _auth(self) -> dict[str, str]:
        auth = self._connection.auth_header()
        return {"Authorization": auth} if auth else {}


def _error_from(resp: httpx.Response) -> KubeApiError:
    try:
        body = resp.json()
        reason = str(body.get("reason", resp.reason_phrase))
        message = str(body.get("message", resp.text))
    except ValueError:
        reason, message = resp.reason_phrase, resp.text[:500]
    return error_for(resp.status_code, reason, message)
