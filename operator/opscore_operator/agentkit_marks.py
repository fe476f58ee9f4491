"""What the operator learnt from AgentKit's answers, kept in memory between passes.

Two facts come only from dispatching, never from a watch event, so they live here:

- `MissingInAgentKit`: Agents whose id AgentKit answered 404 for. AgentKit keeps agents in
  memory, so a restart of AgentKit forgets them all; dispatching to such an agent again
  would only fail again. The mark makes the Agent `Ready=False` (reason
  `NotRegisteredInAgentKit`) until something says the agent may be known again: a change
  of the Agent's spec (a new generation: AgentKit's webhook re-recorded it, or a user
  edited it), or AgentKit listing the id when polling is on. The mark is written to the
  Agent's `Ready` condition, so a restarted operator restores it from there.
- `AgentKitReachability`: per Workflow, whether its last dispatch found AgentKit
  unreachable (connection error, timeout, 5xx), for the Workflow's `AgentKitReachable`
  condition. The condition is written only once trouble was seen (False) and when it
  ends (True), so the common case costs no extra status write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opscore_logic.conditions import get_condition, set_condition
from opscore_logic.workflow_model import WorkflowStatus
from opscore_operator.store import Key

NOT_REGISTERED_REASON = "NotRegisteredInAgentKit"
AGENTKIT_REACHABLE = "AgentKitReachable"


class MissingInAgentKit(Mapping[Key, str]):
    """Agent key -> why it is not registered in AgentKit (with the generation it was
    marked at, so a newer spec clears it)."""

    def __init__(self) -> None:
        self._marks: dict[Key, tuple[str, int | None]] = {}
        self.listeners: list[Callable[[Key], None]] = []  # told every key marked or cleared

    def _changed(self, key: Key) -> None:
        for listener in self.listeners:
            listener(key)

    def __getitem__(self, key: Key) -> str:
        return self._marks[key][0]

    def __iter__(self) -> Iterator[Key]:
        return iter(self._marks)

    def __len__(self) -> int:
        return len(self._marks)

    def mark(self, key: Key, reason: str, generation: int | None) -> None:
        self._marks[key] = (reason, generation)
        self._changed(key)

    def clear(self, key: Key) -> bool:
        """Drop the mark; whether there was one."""
        if self._marks.pop(key, None) is None:
            return False
        self._changed(key)
        return True

    def clear_if_changed(self, key: Key, generation: int | None) -> bool:
        """Drop the mark when the Agent's spec moved past the generation it was set at."""
        held = self._marks.get(key)
        if held is None or generation is None or held[1] is None or generation <= held[1]:
            return False
        del self._marks[key]
        self._changed(key)
        return True


@dataclass(frozen=True, slots=True)
class Trouble:
    reason: str  # CamelCase: Unreachable, Timeout, ServerError
    message: str


class AgentKitReachability:
    """Per workflow: the AgentKit trouble its dispatches met, and recoveries to report."""

    def __init__(self) -> None:
        self._trouble: dict[Key, Trouble] = {}
        self._recovered: set[Key] = set()

    def failed(self, workflow: Key, reason: str, message: str) -> None:
        self._trouble[workflow] = Trouble(reason, message)
        self._recovered.discard(workflow)

    def succeeded(self, workflow: Key, *, shown_down: bool = False) -> bool:
        """A dispatch got through; True when that ends trouble seen before (in memory,
        or `shown_down`: the Workflow's status still says False, e.g. written by the
        operator before a restart)."""
        had_trouble = self._trouble.pop(workflow, None) is not None
        if not (had_trouble or shown_down):
            return False
        self._recovered.add(workflow)
        return True

    def trouble(self, workflow: Key) -> Trouble | None:
        return self._trouble.get(workflow)

    def recovered(self, workflow: Key) -> bool:
        return workflow in self._recovered

    def written(self, workflow: Key) -> None:
        """The recovery is in the Workflow's status now."""
        self._recovered.discard(workflow)

    def forget(self, workflow: Key) -> None:
        self._trouble.pop(workflow, None)
        self._recovered.discard(workflow)

    def set_condition(
        self, workflow: Key, status: WorkflowStatus, now: datetime, generation: int
    ) -> bool:
        """Set `AgentKitReachable` on the new status: False while this workflow's
        dispatches find AgentKit unreachable (they are retried, the steps do not fail),
        True once one gets through again. Absent until trouble is first seen, so the
        common case costs no write. Returns whether a recovery was written into it."""
        trouble = self.trouble(workflow)
        if trouble is not None:
            status.conditions = set_condition(
                status.conditions,
                type=AGENTKIT_REACHABLE,
                status="False",
                reason=trouble.reason,
                message=f"{trouble.message}; dispatches are retried with backoff",
                now=now,
                generation=generation,
            )
            return False
        if not self.recovered(workflow):
            return False
        current = get_condition(status.conditions, AGENTKIT_REACHABLE)
        if current is not None and current.status != "True":
            status.conditions = set_condition(
                status.conditions,
                type=AGENTKIT_REACHABLE,
                status="True",
                reason="Reachable",
                message="AgentKit accepts dispatches again",
                now=now,
                generation=generation,
            )
        return True


def shows_agentkit_down(body: dict[str, Any]) -> bool:
    """Whether a Workflow's stored status says `AgentKitReachable=False`."""
    for cond in (body.get("status") or {}).get("conditions") or []:
        if cond.get("type") == AGENTKIT_REACHABLE:
            return bool(cond.get("status") == "False")
    return False
