"""A de-duplicating work queue, as client-go's: a key is processed by one worker at a time,
and a key added while it is being processed is processed again afterwards (once).

This is what makes reconciliation level-based: events only say "look at this object
again"; what to do is always decided from the whole current state.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._ready = asyncio.Event()
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._closed = False

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key: K) -> None:
        """Ask for `key` to be processed (again). Cheap and idempotent."""
        if self._closed or key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.append(key)
            self._ready.set()

    def pending(self, key: K) -> bool:
        """Whether `key` is waiting for a worker or being processed: a pass of it is due or
        under way (a timer set by `add_after` does not count)."""
        return key in self._dirty or key in self._processing

    def add_after(self, key: K, delay: float) -> None:
        """Process `key` after `delay` seconds; an earlier pending wake-up wins."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        current = self._timers.get(key)
        if current is not None:
            if current.when() <= when:
                return
            current.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def get(self) -> K:
        """Wait for the next key; the caller must call `done(key)` when finished."""
        while not self._queue:
            if self._closed:
                raise asyncio.CancelledError
            self._ready.clear()
            await self._ready.wait()
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._ready.set()

    def close(self) -> None:
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._ready.set()
