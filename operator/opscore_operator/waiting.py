"""Steps waiting for an agent, across workflows, in the order they get one:
higher `priority` first, then older workflows (so none starves)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from opscore_logic.workflow_model import Step
from opscore_operator.store import Key


@dataclass(frozen=True, slots=True)
class Waiter:
    workflow: Key
    priority: int
    created: datetime
    steps: tuple[Step, ...]

    @property
    def rank(self) -> tuple[int, datetime, Key]:
        return (-self.priority, self.created, self.workflow)


class WaitingRoom:
    def __init__(self) -> None:
        self._waiters: dict[Key, Waiter] = {}
        self._sorted: list[Waiter] | None = None

    def __len__(self) -> int:
        return len(self._waiters)

    def set(self, waiter: Waiter) -> None:
        if not waiter.steps:
            self.remove(waiter.workflow)
            return
        if self._waiters.get(waiter.workflow) != waiter:
            self._waiters[waiter.workflow] = waiter
            self._sorted = None

    def remove(self, workflow: Key) -> None:
        if self._waiters.pop(workflow, None) is not None:
            self._sorted = None

    def in_order(self) -> list[Waiter]:
        if self._sorted is None:
            self._sorted = sorted(self._waiters.values(), key=lambda w: w.rank)
        return self._sorted

    def ahead_of(self, rank: tuple[int, datetime, Key], namespace: str) -> list[Waiter]:
        """Waiters in `namespace` that come before `rank`."""
        out: list[Waiter] = []
        for waiter in self.in_order():
            if waiter.rank >= rank:
                break
            if waiter.workflow[0] == namespace:
                out.append(waiter)
        return out
