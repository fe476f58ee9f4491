"""One LIST per resource per second, however many dashboards are open.

Every open dashboard polls every 1-2 s. Without sharing, ten tabs on a namespace with
1,000 workflows would be ten LISTs of all of them per second against the API server, and
as many passes turning them into summaries. A `Snapshot` keeps the last LIST's result
(already transformed) for `ttl` seconds and lets concurrent requests wait for the one
LIST in flight instead of starting their own. A failed LIST is not cached: the next
request tries again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Snapshot(Generic[T]):
    """The latest value of `load()`, reloaded when older than `ttl` seconds."""

    def __init__(
        self,
        load: Callable[[], Awaitable[T]],
        *,
        ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl = ttl
        self._clock = clock
        self._value: T | None = None
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self._loaded_at is not None and self._clock() - self._loaded_at < self._ttl

    async def get(self) -> T:
        if self._fresh():
            assert self._value is not None
            return self._value
        async with self._lock:
            if not self._fresh():  # else: loaded while this request waited for the lock
                self._value = await self._load()
                self._loaded_at = self._clock()
            assert self._value is not None
            return self._value
