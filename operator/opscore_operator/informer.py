"""Keep one cache current with one collection, as client-go's informer does: LIST in pages,
then WATCH from the list's resourceVersion, so no change between the two is missed; go on
from the last version seen when a watch ends; LIST again when the API server says that
version is gone (410), forgetting what the new listing no longer holds.

Why the operator watches for itself instead of through kopf's `on.event` handlers: kopf's
per-event machinery (its queueing, causation, per-object loggers and settings lookups) cost
2.8 ms of the operator's 13.2 ms of CPU per workflow step in B1 (`make bench-profile`), for
handlers that only put the body into a cache. Kopf still runs the process (startup,
cleanup, the liveness probe).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp

from opscore_kube import KubeApiError, KubeClient
from opscore_kube.errors import Gone
from opscore_kube.resources import Resource
from opscore_operator.store import Key, key_of

logger = logging.getLogger("opscore.informer")

#: A watch event for the caches: its type (None for an object from a listing) and body.
Deliver = Callable[[str | None, dict[str, Any]], None]

#: Waits before watching again after a failure, doubled per failure in a row, with jitter.
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0


class Informer:
    """One kind in one namespace (None: every namespace). `known` gives the keys the cache
    holds for this kind, so a relist can forget the objects deleted while unwatched."""

    def __init__(
        self,
        kube: KubeClient,
        resource: Resource,
        namespace: str | None,
        deliver: Deliver,
        known: Callable[[], Iterable[Key]],
    ) -> None:
        self.kube = kube
        self.resource = resource
        self.namespace = namespace
        self.deliver = deliver
        self.known = known
        self.relists = 0

    def __repr__(self) -> str:
        return f"Informer({self.resource.plural} in {self.namespace or 'all namespaces'})"

    async def list(self) -> str:
        """Deliver every object (type None), forget the cached ones the API server no longer
        has, and return the listing's resourceVersion."""
        seen: set[Key] = set()
        token: str | None = None
        version = ""
        while True:
            page = await self.kube.list_page(self.resource, self.namespace, continue_token=token)
            meta = page.get("metadata") or {}
            version = version or str(meta.get("resourceVersion", ""))
            for body in page["items"]:
                seen.add(key_of(body))
                self.deliver(None, body)
            token = meta.get("continue")
            if not token:
                break
            await asyncio.sleep(0)  # let the loop breathe between pages
        for namespace, name in list(self.known()):
            if (namespace, name) not in seen and self.namespace in (None, namespace):
                logger.info(
                    "%s %s/%s is gone from the listing", self.resource.plural, namespace, name
                )
                self.deliver("DELETED", {"metadata": {"namespace": namespace, "name": name}})
        return version

    async def run(self, version: str) -> None:
        """Watch from `version` for as long as the task runs."""
        failures = 0
        while True:
            opened = time.monotonic()
            events = 0
            try:
                async for kind, body in self.kube.watch(self.resource, self.namespace, version):
                    version = str((body.get("metadata") or {}).get("resourceVersion") or version)
                    failures, events = 0, events + 1
                    if kind != "BOOKMARK":
                        self.deliver(kind, body)
                if not events and time.monotonic() - opened < 1.0:
                    # Ended at once with nothing to say (a proxy cutting watches short):
                    # back off as after a failure rather than spin.
                    failures += 1
                    await asyncio.sleep(_backoff(failures))
            except Gone:
                self.relists += 1
                logger.info("%r: version %s is gone; listing again", self, version)
                version = await self._relist()
            except (KubeApiError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                failures += 1
                delay = _backoff(failures)
                logger.warning("%r: watch failed (%r); again in %.1fs", self, exc, delay)
                await asyncio.sleep(delay)

    async def _relist(self) -> str:
        failures = 0
        while True:
            try:
                return await self.list()
            except KubeApiError as exc:
                failures += 1
                delay = _backoff(failures)
                logger.warning("%r: listing failed (%s); again in %.1fs", self, exc, delay)
                await asyncio.sleep(delay)


def _backoff(failures: int) -> float:
    delay = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** (failures - 1))
    return float(delay * (0.5 + random.random() / 2))
