"""Which tasks are in flight on which agent, as the operator itself decided them.

The ledger is updated synchronously with each decision, before any await, so two
workflows reconciled concurrently never give one agent more tasks than it takes. After a
restart it is rebuilt from the workflows' statuses (`adopt`): status is the record.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from opscore_logic.usage import Usage, total
from opscore_logic.workflow_model import StepPhase, WorkflowStatus
from opscore_operator.store import Key


@dataclass(frozen=True, slots=True)
class InFlight:
    workflow: Key
    step: str
    task_id: str
    since: datetime


class Ledger:
    def __init__(self) -> None:
        self._by_agent: dict[Key, dict[str, InFlight]] = defaultdict(dict)
        self._by_workflow: dict[Key, set[tuple[Key, str]]] = defaultdict(set)
        self._adopted: set[Key] = set()
        self.last_dispatch: dict[Key, datetime] = {}
        # When the agent's last task in flight ended, however it ended (lifecycle.py: an
        # `active` received between the last dispatch and this is about that task).
        self.last_end: dict[Key, datetime] = {}
        self._succeeded: dict[Key, int] = defaultdict(int)
        self._failed: dict[Key, int] = defaultdict(int)
        # Usage of ended attempts not yet in the agent's status: (attributed, unattributed)
        # per ended attempt, oldest first (see `usage_deltas`).
        self._usage: dict[Key, list[tuple[Usage, Usage]]] = defaultdict(list)
        # Told the agent whose tasks in flight (or last dispatch) changed.
        self.listeners: list[Callable[[Key], None]] = []

    def _changed(self, agent: Key) -> None:
        for listener in self.listeners:
            listener(agent)

    # -- reading ------------------------------------------------------------------------

    def active(self, agent: Key) -> int:
        return len(self._by_agent.get(agent, ()))

    def current_task(self, agent: Key) -> InFlight | None:
        """The oldest task in flight on `agent`."""
        tasks = self._by_agent.get(agent)
        if not tasks:
            return None
        return min(tasks.values(), key=lambda t: t.since)

    def total_in_flight(self) -> int:
        return sum(len(tasks) for tasks in self._by_agent.values())

    def workflows_on(self, agent: Key) -> set[Key]:
        return {t.workflow for t in self._by_agent.get(agent, {}).values()}

    def counter_deltas(self, agent: Key) -> tuple[int, int]:
        """Tasks succeeded/failed on `agent` since the last `settle_counters`."""
        return self._succeeded.get(agent, 0), self._failed.get(agent, 0)

    def settle_counters(self, agent: Key, succeeded: int, failed: int) -> None:
        """The agent's status now includes these counts: stop carrying them."""
        self._succeeded[agent] -= succeeded
        self._failed[agent] -= failed

    def carry_counters(self, agent: Key, succeeded: int, failed: int) -> None:
        """Add counts to write into `agent`'s status (those of a duplicate Agent merged
        into it), with the agent's next status write."""
        self._succeeded[agent] += succeeded
        self._failed[agent] += failed

    def add_usage(self, agent: Key, *, attributed: Usage, unattributed: Usage) -> None:
        """Usage of an attempt whose end is in its workflow's status, to add to the
        agent's status counters with its next write."""
        if attributed.is_empty() and unattributed.is_empty():
            return
        self._usage[agent].append((attributed, unattributed))

    def usage_deltas(self, agent: Key) -> tuple[int, Usage, Usage]:
        """(how many pending entries, their attributed sum, their unattributed sum)."""
        pending = list(self._usage.get(agent, ()))
        return (
            len(pending),
            total(a for a, _ in pending),
            total(u for _, u in pending),
        )

    def settle_usage(self, agent: Key, entries: int) -> None:
        """The agent's status now includes the oldest `entries`: stop carrying them."""
        pending = self._usage.get(agent)
        if pending is not None:
            del pending[:entries]

    # -- writing ------------------------------------------------------------------------

    def reserve(self, agent: Key, task: InFlight) -> None:
        self._by_agent[agent][task.task_id] = task
        self._by_workflow[task.workflow].add((agent, task.task_id))
        self.last_dispatch[agent] = task.since
        self._changed(agent)

    def release(
        self, agent: Key, task_id: str, result: Literal["succeeded", "failed", "abandoned"]
    ) -> None:
        task = self._by_agent.get(agent, {}).pop(task_id, None)
        if task is None:
            return
        self._by_workflow[task.workflow].discard((agent, task_id))
        self.last_end[agent] = datetime.now().astimezone()
        self._changed(agent)
        if result == "succeeded":
            self._succeeded[agent] += 1
        elif result == "failed":
            self._failed[agent] += 1

    def adopt(self, workflow: Key, status: WorkflowStatus) -> None:
        """Take over the in-flight tasks recorded in a status this process did not write."""
        if workflow in self._adopted:
            return
        self._adopted.add(workflow)
        namespace = workflow[0]
        for step in status.steps:
            if step.phase is StepPhase.RUNNING and step.agent and step.task_id:
                since = step.dispatched_at or datetime.now().astimezone()
                self.reserve(
                    (namespace, step.agent), InFlight(workflow, step.name, step.task_id, since)
                )

    def rebuild(self, statuses: dict[Key, WorkflowStatus]) -> None:
        """Forget every reservation and adopt `statuses` afresh: what a standby does when
        it takes over. It adopted what was in flight when it synced, long ago; another
        replica finished those tasks since, and its own warm cache says so."""
        touched = set(self._by_agent)
        self._by_agent.clear()
        self._by_workflow.clear()
        self._adopted.clear()
        for workflow, status in statuses.items():
            self.adopt(workflow, status)
        for agent in touched - set(self._by_agent):
            self._changed(agent)

    def forget_workflow(self, workflow: Key) -> set[Key]:
        """Drop a deleted workflow's tasks; returns the agents that got capacity back."""
        freed: set[Key] = set()
        for agent, task_id in self._by_workflow.pop(workflow, set()):
            if self._by_agent.get(agent, {}).pop(task_id, None) is not None:
                freed.add(agent)
        self._adopted.discard(workflow)
        ended = datetime.now().astimezone()
        for agent in freed:
            self.last_end[agent] = ended
            self._changed(agent)
        return freed
