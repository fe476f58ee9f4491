"""A small asyncio client for the Kubernetes API, shared by the operator and the sidecar.

Why not the official client: its calls are blocking, and the report -> next dispatch path
must not wait on a thread pool. Why not kopf's: it is private. This one does only what
Ops-Core needs (get, list, watch, create, merge-patch, delete, events) with a rate limit,
Retry-After, bounded retries and a Prometheus counter per verb and code.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Self

from prometheus_client import Counter, Histogram

from opscore_kube import faults
from opscore_kube.connection import Connection, load_connection
from opscore_kube.errors import KubeApiError, Unavailable, error_for
from opscore_kube.exchange import AiohttpExchange, Answer, DeliveryError
from opscore_kube.ratelimit import TokenBucket
from opscore_kube.resources import Resource
from opscore_kube.watch import WatchStream

logger = logging.getLogger("opscore.kube")

Body = dict[str, Any]

API_REQUESTS = Counter(
    "opscore_kube_api_requests_total",
    "Requests sent to the Kubernetes API server, by verb and HTTP status code.",
    ["verb", "code"],
)
API_LATENCY = Histogram(
    "opscore_kube_api_request_seconds",
    "Latency of Kubernetes API requests, by verb.",
    ["verb"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)

_RETRYABLE = {429, 500, 502, 503, 504}

# Requests in flight at once (more wait for a free connection in aiohttp's queue).
MAX_CONNECTIONS = 64
# Idle connections are closed after this, well before the API server's 90 s idle timeout.
KEEPALIVE_SECONDS = 30.0


class KubeClient:
    """Asynchronous Kubernetes API access with a client-side rate limit.

    Retries (connection errors, 429, 5xx) are bounded by `max_retries`; after that the
    caller gets `Unavailable` and decides (the sidecar answers 503, the operator requeues).
    """

    def __init__(
        self,
        connection: Connection,
        *,
        qps: float = 100.0,
        burst: int = 200,
        timeout: float = 10.0,
        max_retries: int = 3,
        user_agent: str = "opscore",
    ) -> None:
        self._conn = connection
        self._bucket = TokenBucket(rate=qps, burst=burst)
        self._max_retries = max_retries
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        # Requests go straight onto aiohttp's pool (see `exchange`): every write of the
        # heartbeat path is one of these. Connections stay open (the API server keeps
        # idle ones for 90 s), so a burst does not pay a TLS handshake per request.
        self._http = faults.wrap(  # the test bed's seam (F10); the exchange itself when unset
            AiohttpExchange(
                connection.server,
                ssl_context=connection.ssl_context,
                max_connections=MAX_CONNECTIONS,
                keepalive_timeout=KEEPALIVE_SECONDS,
                timeout=timeout,
            )
        )
        self._watches = WatchStream(connection, user_agent=user_agent)

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None = None, **kwargs: Any) -> Self:
        return cls(load_connection(kubeconfig), **kwargs)

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._watches.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- verbs --------------------------------------------------------------------------

    async def get(self, resource: Resource, namespace: str | None, name: str) -> Body:
        return await self._request("GET", resource.path(namespace, name), verb="get")

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Body:
        params: dict[str, str] = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        return await self._request("GET", resource.path(namespace), verb="list", params=params)

    async def list_pages(
        self, resource: Resource, namespace: str | None = None, *, limit: int = 500
    ) -> AsyncIterator[builtins.list[Body]]:
        """The collection in pages of `limit` items (`continue` tokens), so a large one is
        never held as one response. Items get `apiVersion` and `kind`, as a GET gives."""
        token: str | None = None
        while True:
            page = await self.list_page(resource, namespace, limit=limit, continue_token=token)
            yield page["items"]
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    async def list_page(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        limit: int = 500,
        continue_token: str | None = None,
    ) -> Body:
        """One page of the collection, as the API server sent it (`metadata` holds the
        `continue` token and the list's `resourceVersion`, where a watch can start). Items
        get `apiVersion` and `kind`, as a GET gives."""
        params = {"limit": str(limit)}
        if continue_token:
            params["continue"] = continue_token
        page = await self._request("GET", resource.path(namespace), verb="list", params=params)
        kind = str(page.get("kind", "")).removesuffix("List")
        items: builtins.list[Body] = page.get("items") or []
        for item in items:
            item.setdefault("apiVersion", resource.api_version)
            item.setdefault("kind", kind)
        page["items"] = items
        return page

    def watch(
        self, resource: Resource, namespace: str | None, resource_version: str
    ) -> AsyncIterator[tuple[str, Body]]:
        """The collection's changes after `resource_version` (see `watch.py`)."""
        return self._watches.events(resource, namespace, resource_version)

    async def create(self, resource: Resource, namespace: str | None, body: Body) -> Body:
        return await self._request(
            "POST",
            resource.path(namespace),
            verb="create",
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )

    async def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        status: bool = False,
    ) -> Body:
        """JSON merge patch of the object, or of its status subresource."""
        path = resource.path(namespace, name) + ("/status" if status else "")
        return await self._request(
            "PATCH",
            path,
            verb="patch_status" if status else "patch",
            body=json.dumps(patch).encode(),
            headers={"Content-Type": "application/merge-patch+json"},
        )

    async def json_patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        operations: Sequence[Mapping[str, Any]],
        *,
        status: bool = False,
    ) -> Body:
        """JSON patch (RFC 6902) of the object or its status. Its `test` operations are
        field-level preconditions: when one fails, nothing is applied and the API server
        answers 422 (`Invalid`)."""
        path = resource.path(namespace, name) + ("/status" if status else "")
        return await self._request(
            "PATCH",
            path,
            verb="patch_status" if status else "patch",
            body=json.dumps(list(operations)).encode(),
            headers={"Content-Type": "application/json-patch+json"},
        )

    async def delete(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        *,
        preconditions: Mapping[str, str] | None = None,
    ) -> Body:
        """Delete the object; with `preconditions` ({uid, resourceVersion}) only if it is
        still that exact version (else `Conflict`), so nothing written since is lost."""
        if preconditions:
            body = {
                "kind": "DeleteOptions",
                "apiVersion": "v1",
                "preconditions": dict(preconditions),
            }
            return await self._request(
                "DELETE",
                resource.path(namespace, name),
                verb="delete",
                body=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
        return await self._request("DELETE", resource.path(namespace, name), verb="delete")

    async def readyz(self) -> bool:
        """True when the API server answers /readyz with 200 (one try, no retries)."""
        try:
            resp = await self._http.send(
                "GET",
                "/readyz",
                headers={**self._headers, **self._auth_headers()},
                read_timeout=2.0,
            )
        except DeliveryError:
            return False
        return resp.status == 200

    # -- plumbing -----------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        auth = self._conn.auth_header()
        return {"Authorization": auth} if auth else {}

    async def _request(
        self,
        method: str,
        path: str,
        *,
        verb: str,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Body:
        attempt = 0
        while True:
            attempt += 1
            await self._bucket.acquire()
            started = time.perf_counter()
            try:
                resp = await self._http.send(
                    method,
                    path,
                    params=params,
                    headers={**self._headers, **self._auth_headers(), **(headers or {})},
                    body=body,
                )
            except DeliveryError as exc:
                API_REQUESTS.labels(verb, "error").inc()
                if attempt > self._max_retries:
                    raise Unavailable(0, "Unreachable", f"{method} {path}: {exc!r}") from exc
                await asyncio.sleep(_backoff(attempt))
                continue
            API_LATENCY.labels(verb).observe(time.perf_counter() - started)
            API_REQUESTS.labels(verb, str(resp.status)).inc()
            if resp.status < 400:
                return resp.json() if resp.content else {}
            if resp.status in _RETRYABLE and attempt <= self._max_retries:
                delay = _retry_after(resp) or _backoff(attempt)
                if resp.status == 429:
                    self._bucket.pause(delay)
                logger.debug("retrying %s %s after %s in %.2fs", verb, path, resp.status, delay)
                await asyncio.sleep(delay)
                continue
            raise _error_from(resp)


def _backoff(attempt: int) -> float:
    return float(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random() / 2))


def _retry_after(resp: Answer) -> float | None:
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return min(10.0, max(0.0, float(value)))
    except ValueError:
        return None


def _error_from(resp: Answer) -> KubeApiError:
    try:
        status_body = resp.json()
        reason = str(status_body.get("reason", resp.reason))
        message = str(status_body.get("message", resp.text))
    except (ValueError, AttributeError):  # not JSON, or JSON but not a Status object
        reason, message = resp.reason, resp.text[:500]
    return error_for(resp.status, reason, message)
