"""The operator's cache sync, as an informer's: LIST every watched kind before the first
reconcile, so no decision starts from half the picture (a restarted operator that
reconciled one workflow before it had seen the others would give their busy agents a
second task).

Kopf's own way to get that ordering (`@kopf.index` handlers, which run for the whole
initial listing before any other handler) costs O(n^2) at startup: kopf keeps a toggle
per listed object and wakes every waiting object's worker on each toggle change (20,000
objects: tens of minutes). So the operator lists for itself, in pages, in its startup
handler, and kopf's watch events (its own listing included) keep the caches current from
there (an older body never replaces a newer one; the handlers are level-based, so seeing
an object twice costs a pass, nothing else).

One gap is closed afterwards: an object deleted between this LIST and kopf's would stay in
the cache (kopf neither lists it nor sees its deletion). Every listed object is confirmed
by kopf's first event for it; what stays unconfirmed once kopf's events stop arriving is
fetched, and forgotten if the API server no longer has it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from opscore_kube import KubeClient, NotFound
from opscore_kube.resources import Resource
from opscore_operator.store import Key, key_of

logger = logging.getLogger("opscore.sync")

Deliver = Callable[[str | None, dict[str, Any]], None]


def watched_namespaces(argv: Sequence[str]) -> list[str | None]:
    """The namespaces kopf serves, from its command line (`-n/--namespace`, repeatable;
    `-A/--all-namespaces`: None, i.e. cluster-wide). With namespace scanning off (see
    handlers.py) kopf serves plain names only, never patterns, and so does this."""
    names: list[str] = []
    clusterwide = False
    args = list(argv)
    for index, arg in enumerate(args):
        value: str | None = None
        if arg in ("-A", "--all-namespaces"):
            clusterwide = True
        elif arg in ("-n", "--namespace") and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith("--namespace="):
            value = arg.split("=", 1)[1]
        elif arg.startswith("-n") and len(arg) > 2 and not arg.startswith("--"):
            value = arg[2:]
        if value is not None:
            names.append(value)
    legacy = os.environ.get("KOPF_RUN_NAMESPACE")
    if legacy:
        names.append(legacy)
    if clusterwide:
        return [None]
    return [n for n in dict.fromkeys(names) if not any(c in n for c in "!*?,")]


class InitialSync:
    """LIST the kinds, deliver every object, then track kopf's confirmations."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self._unconfirmed: dict[tuple[str, Key], tuple[Resource, Deliver]] = {}

    async def list_all(
        self, kinds: Sequence[tuple[Resource, Deliver]], namespaces: Sequence[str | None]
    ) -> int:
        """Deliver every object of `kinds` in `namespaces`; returns how many."""
        count = 0
        for resource, deliver in kinds:
            for namespace in namespaces:
                async for page in self.kube.list_pages(resource, namespace):
                    for body in page:
                        self._unconfirmed[(resource.plural, key_of(body))] = (resource, deliver)
                        deliver(None, body)
                        count += 1
                    await asyncio.sleep(0)  # let the loop breathe between pages
        return count

    def confirm(self, plural: str, key: Key) -> None:
        """Kopf delivered an event for this object."""
        if self._unconfirmed:
            self._unconfirmed.pop((plural, key), None)

    def pending(self) -> int:
        return len(self._unconfirmed)

    async def sweep(self, quiet: float = 5.0) -> None:
        """Once no confirmation came for `quiet` seconds, fetch what is left unconfirmed
        and forget what the API server no longer has."""
        last = -1
        while self._unconfirmed:
            if len(self._unconfirmed) != last:
                last = len(self._unconfirmed)
                await asyncio.sleep(quiet)
                continue
            for (plural, key), (resource, deliver) in list(self._unconfirmed.items()):
                try:
                    body = await self.kube.get(resource, key[0], key[1])
                except NotFound:
                    logger.info("%s %s/%s was deleted before the watch began", plural, *key)
                    deliver("DELETED", {"metadata": {"namespace": key[0], "name": key[1]}})
                else:
                    deliver(None, body)
                self._unconfirmed.pop((plural, key), None)
