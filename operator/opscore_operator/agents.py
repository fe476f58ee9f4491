"""The agent reconciler: derive each Agent's operator-owned status from its reports and
the ledger, and write it only when something a reader would notice changed.

The sidecar owns `status.reports`; this writes every other status field and never that
one, so the two writers' merge patches never undo each other.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from opscore_kube import AGENTS, KubeClient, NotFound
from opscore_logic.agent_model import AgentStatus
from opscore_logic.lifecycle import Workload, derive_status, heartbeat_deadline
from opscore_logic.names import AGENT_KEY_LABEL, agent_key
from opscore_operator.events import EventRecorder
from opscore_operator.ledger import Ledger
from opscore_operator.store import Key, ObjectCache
from opscore_operator.views import parse_agent
from opscore_operator.workqueue import WorkQueue

logger = logging.getLogger("opscore.agents")

AGENT_WRITES = Counter(
    "opscore_agent_status_writes_total", "Agent status writes, by result.", ["result"]
)

# Fields of the status that the operator owns (everything but the sidecar's `reports`).
_OPERATOR_FIELDS = (
    "state",
    "rawState",
    "stateSince",
    "lastSeen",
    "currentTask",
    "currentTaskId",
    "activeTasks",
    "tasksSucceeded",
    "tasksFailed",
    "lastError",
    "conditions",
    "observedGeneration",
)


class AgentReconciler:
    def __init__(
        self,
        *,
        kube: KubeClient,
        agents: ObjectCache,
        ledger: Ledger,
        missing_agents: dict[Key, str],
        queue: WorkQueue[Key],
        workflow_queue: WorkQueue[Key],
        recorder: EventRecorder,
    ) -> None:
        self.kube = kube
        self.agents = agents
        self.ledger = ledger
        self.missing_agents = missing_agents
        self.queue = queue
        self.workflow_queue = workflow_queue
        self.recorder = recorder

    async def worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("agent %s/%s: status update failed (%s)", *key, exc)
                self.queue.add_after(key, 1.0)
            finally:
                self.queue.done(key)

    async def reconcile(self, key: Key) -> None:
        body = self.agents.get(key)
        parsed = parse_agent(self.agents, key)
        if body is None or parsed is None:
            return
        await self._ensure_label(key, body, parsed.spec.agent_id or key[1])
        now = datetime.now(UTC)
        succeeded, failed = self.ledger.counter_deltas(key)
        current = self.ledger.current_task(key)
        workload = Workload(
            active_tasks=self.ledger.active(key),
            current_task=f"{current.workflow[1]}/{current.step}" if current else None,
            current_task_id=current.task_id if current else None,
            missing_reason=self.missing_agents.get(key),
        )
        derived = derive_status(
            spec=parsed.spec,
            status=parsed.status,
            workload=workload,
            now=now,
            generation=parsed.generation,
        ).model_copy(
            update={
                "tasks_succeeded": parsed.status.tasks_succeeded + succeeded,
                "tasks_failed": parsed.status.tasks_failed + failed,
            }
        )
        old, new = _owned(parsed.status), _owned(derived)
        deadline = heartbeat_deadline(parsed.spec, parsed.status.reports)
        if deadline is not None and deadline > now:
            self.queue.add_after(key, (deadline - now).total_seconds() + 0.05)
        if _comparable(new) == _comparable(old) and not _last_seen_stale(old, derived):
            return
        patch = {k: new.get(k) for k in set(old) | set(new) if old.get(k) != new.get(k)}
        try:
            updated = await self.kube.patch(AGENTS, key[0], key[1], {"status": patch}, status=True)
        except NotFound:
            return
        AGENT_WRITES.labels("ok").inc()
        self.ledger.settle_counters(key, succeeded, failed)
        self.agents.upsert(updated)
        if parsed.status.state != derived.state and derived.state is not None:
            self.recorder.record(
                body,
                type="Warning" if derived.state.value in ("Offline", "Error") else "Normal",
                reason=f"Agent{derived.state.value}",
                message=f"agent is {derived.state.value}"
                + (f": {derived.last_error}" if derived.state.value == "Error" else ""),
            )
            # Offline agents fail their in-flight steps: let those workflows see it.
            for workflow in self.ledger.workflows_on(key):
                self.workflow_queue.add(workflow)

    async def _ensure_label(self, key: Key, body: dict[str, Any], agent_id: str) -> None:
        """User-declared Agents get the agent-key label the sidecar looks them up by."""
        labels = body.get("metadata", {}).get("labels") or {}
        wanted = agent_key(agent_id)
        if labels.get(AGENT_KEY_LABEL) == wanted:
            return
        try:
            updated = await self.kube.patch(
                AGENTS, key[0], key[1], {"metadata": {"labels": {AGENT_KEY_LABEL: wanted}}}
            )
        except NotFound:
            return
        self.agents.upsert(updated)


def _owned(status: AgentStatus) -> dict[str, Any]:
    wire = status.wire()
    return {k: wire[k] for k in _OPERATOR_FIELDS if k in wire}


LAST_SEEN_RESOLUTION_SECONDS = 30.0


def _last_seen_stale(old: dict[str, Any], derived: AgentStatus) -> bool:
    """`lastSeen` is refreshed when it lags by more than the resolution: `kubectl get`
    stays truthful without a write per heartbeat."""
    if derived.last_seen is None:
        return False
    written = old.get("lastSeen")
    if written is None:
        return True
    lag = derived.last_seen - datetime.fromisoformat(str(written).replace("Z", "+00:00"))
    return lag.total_seconds() > LAST_SEEN_RESOLUTION_SECONDS


def _comparable(owned: dict[str, Any]) -> dict[str, Any]:
    """What must change to be worth a write: times that move on every report do not."""
    out = {k: v for k, v in owned.items() if k not in ("lastSeen", "stateSince")}
    out["conditions"] = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"}
        for c in owned.get("conditions", [])
    ]
    return out
