"""Submitting workflows fast and seeing them finish, as the API server reports it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from opscore_kube import WORKFLOWS, KubeApiError
from opscore_testbed.bench.kube import BenchKube

FINISHED = ("Succeeded", "Failed", "Cancelled")


def one_step(name: str, capability: str = "bench") -> dict[str, Any]:
    return _workflow(name, [{"name": "s1", "capabilities": [capability]}])


def three_steps(name: str, capability: str = "bench") -> dict[str, Any]:
    return _workflow(name, [{"name": f"s{i}", "capabilities": [capability]} for i in (1, 2, 3)])


def _workflow(name: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": WORKFLOWS.api_version,
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"steps": steps},
    }


async def create_all(
    kube: BenchKube, namespace: str, bodies: Iterable[dict[str, Any]], concurrency: int = 32
) -> dict[str, float]:
    """Create every workflow as fast as the API server takes them; name -> epoch created."""
    created: dict[str, float] = {}
    gate = asyncio.Semaphore(concurrency)

    async def one(body: dict[str, Any]) -> None:
        async with gate:
            await kube.create(WORKFLOWS, namespace, body)
            created[body["metadata"]["name"]] = time.time()

    await asyncio.gather(*(one(b) for b in bodies))
    return created


async def create_at_rate(
    kube: BenchKube,
    namespace: str,
    bodies: list[dict[str, Any]],
    rate: float,
) -> dict[str, float]:
    """Open-loop submission: body i is sent at start + i/rate, whatever the answers do."""
    created: dict[str, float] = {}
    start = time.monotonic()

    async def one(index: int, body: dict[str, Any]) -> None:
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await kube.create(WORKFLOWS, namespace, body)
        created[body["metadata"]["name"]] = time.time()

    await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies)))
    return created


@dataclass
class CompletionWatcher:
    """Watches a namespace's workflows and notes when each one first reached a final phase."""

    kube: BenchKube
    namespace: str
    finished: dict[str, tuple[str, float]] = field(default_factory=dict)
    #: The object as first seen finished (its status says why it ended).
    final: dict[str, dict[str, Any]] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        version: str | None = None
        while True:
            try:
                if version is None:
                    listing = await self.kube.list(WORKFLOWS, self.namespace)
                    for item in listing.get("items", []):
                        self._see(item)
                    version = listing["metadata"]["resourceVersion"]
                async for kind, obj in self.kube.watch(WORKFLOWS, self.namespace, version):
                    version = obj.get("metadata", {}).get("resourceVersion", version)
                    if kind in ("ADDED", "MODIFIED"):
                        self._see(obj)
            except (KubeApiError, aiohttp.ClientError, TimeoutError, ValueError):
                # The API server may be down (the fault suite stops it): list again later.
                version = None
                await asyncio.sleep(0.2)

    def _see(self, obj: dict[str, Any]) -> None:
        phase = (obj.get("status") or {}).get("phase")
        name = obj["metadata"]["name"]
        if phase in FINISHED and name not in self.finished:
            self.finished[name] = (phase, time.time())
            self.final[name] = obj
            self._changed.set()

    async def wait_for(self, names: set[str], within: float) -> bool:
        """True when all `names` finished within `within` seconds."""
        deadline = time.monotonic() + within
        while not names <= self.finished.keys():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 1.0))
        return True

    def problems(self, names: set[str], *, within: float) -> list[str]:
        """Why a benchmark's figures cannot be trusted: workflows of `names` that did not
        finish (within the `within` seconds the scenario waited) or did not succeed. A
        benchmark measures success, so either fails `make bench`."""
        found = []
        unfinished = sorted(names - self.finished.keys())
        if unfinished:
            found.append(
                f"{len(unfinished)} of {len(names)} workflows not finished within {within:g}s:"
                f" {unfinished[:5]}"
            )
        failed = sorted(
            n for n in names & self.finished.keys() if self.finished[n][0] != "Succeeded"
        )
        if failed:
            found.append(
                f"{len(failed)} workflows did not succeed: "
                + ", ".join(f"{n} {self.finished[n][0]}" for n in failed[:5])
            )
        return found
