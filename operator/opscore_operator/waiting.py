"""Steps waiting for an agent, across workflows, in the order they get one:
higher `priority` first, then older workflows (so none starves).

Kept sorted per namespace (a bisect-ordered list of ranks), so a reconcile asks for the
waiters ahead of it without sorting or scanning the whole room: a set or a remove costs
a binary search and a memmove, `ahead_of` walks only the waiters it yields.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from opscore_logic.workflow_model import Step
from opscore_operator.store import Key

Rank = tuple[int, datetime, Key]


@dataclass(frozen=True, slots=True)
class Waiter:
    workflow: Key
    priority: int
    created: datetime
    steps: tuple[Step, ...]

    @property
    def rank(self) -> Rank:
        return (-self.priority, self.created, self.workflow)


class WaitingRoom:
    def __init__(self) -> None:
        self._waiters: dict[Key, Waiter] = {}
        # Per namespace: the ranks of its waiters, sorted (a rank ends with the workflow's
        # key, so ranks are unique and name their waiter).
        self._ranks: dict[str, list[Rank]] = {}

    def __len__(self) -> int:
        return len(self._waiters)

    def set(self, waiter: Waiter) -> None:
        if not waiter.steps:
            self.remove(waiter.workflow)
            return
        held = self._waiters.get(waiter.workflow)
        if held == waiter:
            return
        if held is not None:
            self._unrank(held)
        self._waiters[waiter.workflow] = waiter
        bisect.insort(self._ranks.setdefault(waiter.workflow[0], []), waiter.rank)

    def remove(self, workflow: Key) -> None:
        held = self._waiters.pop(workflow, None)
        if held is not None:
            self._unrank(held)

    def _unrank(self, waiter: Waiter) -> None:
        namespace = waiter.workflow[0]
        ranks = self._ranks[namespace]
        rank = waiter.rank
        index = bisect.bisect_left(ranks, rank)
        if index < len(ranks) and ranks[index] == rank:
            del ranks[index]
        if not ranks:
            del self._ranks[namespace]

    def in_namespace(self, namespace: str) -> Iterator[Waiter]:
        """The namespace's waiters in order (lazily, as `ahead_of`)."""
        return self.ahead_of(None, namespace)

    def in_order(self) -> list[Waiter]:
        """Every waiter, in order (for inspection; the hot paths are per namespace)."""
        return sorted(self._waiters.values(), key=lambda w: w.rank)

    def ahead_of(self, rank: Rank | None, namespace: str) -> Iterator[Waiter]:
        """Waiters in `namespace` that come before `rank` (all of them when None), in
        order, lazily: a caller that stops early pays only for what it took. Consume it
        before the room changes (the reconcilers do, synchronously)."""
        ranks = self._ranks.get(namespace)
        if not ranks:
            return iter(())
        end = len(ranks) if rank is None else bisect.bisect_left(ranks, rank)
        return (self._waiters[ranks[index][2]] for index in range(end))
