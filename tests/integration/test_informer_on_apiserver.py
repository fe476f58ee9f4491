"""The operator's informer against the real API server: what it lists and then watches
reaches the cache in order, and a version the API server no longer keeps (410) makes it
list again, forgetting what is gone instead of holding it for ever."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from opscore_kube import WORKFLOWS, KubeClient
from opscore_kube.errors import Gone
from opscore_operator.informer import Informer
from opscore_testbed.controlplane import ControlPlane

Body = dict[str, Any]


def _workflow(name: str) -> Body:
    return {
        "apiVersion": WORKFLOWS.api_version,
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"steps": [{"name": "s1", "capabilities": ["x"]}]},
    }


class Cache:
    """What the runtime's caches would hold, and every delivery in order."""

    def __init__(self) -> None:
        self.bodies: dict[tuple[str, str], Body] = {}
        self.log: list[tuple[str | None, str]] = []
        self.changed = asyncio.Event()

    def deliver(self, kind: str | None, body: Body) -> None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        self.log.append((kind, meta["name"]))
        if kind == "DELETED":
            self.bodies.pop(key, None)
        else:
            self.bodies[key] = body
        self.changed.set()

    async def wait_for(self, entry: tuple[str | None, str]) -> None:
        async with asyncio.timeout(30):
            while entry not in self.log:
                await self.changed.wait()
                self.changed.clear()


async def _listed_then_watched(kubeconfig: str, namespace: str) -> list[tuple[str | None, str]]:
    async with KubeClient.from_kubeconfig(kubeconfig) as kube:
        await kube.create(WORKFLOWS, namespace, _workflow("before"))
        cache = Cache()
        informer = Informer(kube, WORKFLOWS, namespace, cache.deliver, lambda: list(cache.bodies))
        version = await informer.list()
        task = asyncio.create_task(informer.run(version))
        try:
            await kube.create(WORKFLOWS, namespace, _workflow("after"))
            await kube.patch(WORKFLOWS, namespace, "after", {"metadata": {"labels": {"x": "1"}}})
            await kube.delete(WORKFLOWS, namespace, "before")
            await cache.wait_for(("DELETED", "before"))
        finally:
            task.cancel()
        return cache.log


def test_the_listing_then_every_change_after_it_reaches_the_cache_in_order(
    crds: ControlPlane, namespace: str
) -> None:
    log = asyncio.run(_listed_then_watched(str(crds.kubeconfig), namespace))
    assert log == [
        (None, "before"),
        ("ADDED", "after"),
        ("MODIFIED", "after"),
        ("DELETED", "before"),
    ]


async def _watch_from_the_beginning(kubeconfig: str, namespace: str) -> None:
    async with KubeClient.from_kubeconfig(kubeconfig) as kube:
        async for _ in kube.watch(WORKFLOWS, namespace, "1"):
            pass


def test_a_version_the_api_server_no_longer_keeps_is_gone(
    crds: ControlPlane, namespace: str
) -> None:
    with pytest.raises(Gone):
        asyncio.run(_watch_from_the_beginning(str(crds.kubeconfig), namespace))


async def _relisted(kubeconfig: str, namespace: str) -> tuple[Cache, int]:
    async with KubeClient.from_kubeconfig(kubeconfig) as kube:
        await kube.create(WORKFLOWS, namespace, _workflow("kept"))
        cache = Cache()
        # Held from an earlier listing, deleted while nothing watched.
        cache.bodies[(namespace, "deleted-unwatched")] = {}
        informer = Informer(kube, WORKFLOWS, namespace, cache.deliver, lambda: list(cache.bodies))
        task = asyncio.create_task(informer.run("1"))
        try:
            await cache.wait_for(("DELETED", "deleted-unwatched"))
        finally:
            task.cancel()
        return cache, informer.relists


def test_gone_lists_again_and_forgets_what_was_deleted_meanwhile(
    crds: ControlPlane, namespace: str
) -> None:
    cache, relists = asyncio.run(_relisted(str(crds.kubeconfig), namespace))
    assert relists == 1
    assert list(cache.bodies) == [(namespace, "kept")]
