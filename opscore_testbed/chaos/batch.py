"""Submitting a batch of workflows under load and seeing each one finish.

Submission is open loop (workflow i at start + i/rate, whatever happens meanwhile), so a
fault meets a steady flow. A create the API server cannot take (it may be down: F3) is
retried until it can; a create whose answer was lost but which went through comes back as
409 and counts as created.
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Self

import httpx

from opscore_kube import WORKFLOWS, Conflict, Unavailable
from opscore_testbed.bench.kube import BenchKube
from opscore_testbed.bench.workload import CompletionWatcher
from opscore_testbed.chaos.workload import Planned

#: How long one create keeps trying while the API server is away.
CREATE_PATIENCE_S = 180.0


class Batch:
    """The workflows of one scenario: when each was created and how each ended."""

    def __init__(self, kube: BenchKube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.planned: list[Planned] = []
        self.created: dict[str, float] = {}  # name -> epoch the API server took it
        self.watcher = CompletionWatcher(kube, namespace)

    async def __aenter__(self) -> Self:
        self.watcher.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.watcher.stop()

    async def submit(self, planned: list[Planned], rate: float | None) -> None:
        """Create every workflow, `rate` per second (None: all at once)."""
        self.planned.extend(planned)
        start = time.monotonic()

        async def one(index: int, item: Planned) -> None:
            if rate:
                delay = start + index / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await self._create(item)

        await asyncio.gather(*(one(i, p) for i, p in enumerate(planned)))

    async def _create(self, item: Planned) -> None:
        deadline = time.monotonic() + CREATE_PATIENCE_S
        while True:
            try:
                await self.kube.create(WORKFLOWS, self.namespace, item.body)
            except Conflict:
                pass  # an earlier try went through; its answer was lost
            except (Unavailable, httpx.HTTPError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
                continue
            self.created[item.name] = time.time()
            return

    def unfinished(self) -> set[str]:
        return {p.name for p in self.planned} - self.watcher.finished.keys()

    async def wait(self, within: float) -> bool:
        """True when every submitted workflow finished within `within` seconds."""
        return await self.watcher.wait_for({p.name for p in self.planned}, within)

    def finished_at(self, name: str) -> float | None:
        seen = self.watcher.finished.get(name)
        return seen[1] if seen else None

    def last_finished(self) -> float | None:
        return max((t for _, t in self.watcher.finished.values()), default=None)
