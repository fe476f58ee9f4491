"""The agent reconciler: derive each Agent's operator-owned status from its reports and
the ledger, and write it only when something a reader would notice changed.

The sidecar owns `status.reports`; this writes every other status field and never that
one, so the two writers' merge patches never undo each other. The one exception is the
merge of a duplicate Agent (see `opscore_logic.registration`): its reports are handed over
to the Agent that keeps the id with a write guarded by the keeper's resourceVersion, before
the duplicate is deleted with a resourceVersion precondition, so a report stored meanwhile
on either object makes the step fail and retry instead of being lost. The handover bumps
`status.reportSequence` as the sidecar's writes do, so a sidecar holding the keeper's
older list fails its next write's test, reads again and keeps the handed-over reports.

Heartbeats: each pass schedules the next one at the agent's heartbeat deadline (the last
report's arrival + `heartbeatTimeoutSeconds`). The pass at that moment derives `Offline`,
writes it, posts an Event and wakes the workflows with a task on the agent; their pass
computes the same `Offline` from the same clock rule (`lifecycle.observed_state`) and fails
the attempt with `AgentOffline`, to be retried per the step's policy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter
from pydantic import ValidationError

from opscore_kube import AGENTS, Conflict, KubeClient, NotFound
from opscore_logic.agent_model import AgentState, AgentStatus
from opscore_logic.base import parse_time
from opscore_logic.lifecycle import Workload, derive_status, heartbeat_deadline
from opscore_logic.names import AGENT_KEY_LABEL, agent_key
from opscore_logic.registration import (
    Holder,
    agent_id_of,
    created_by,
    merge_plan,
    registration_fill,
)
from opscore_logic.report_log import merge_reports, report_limit
from opscore_logic.usage import Usage
from opscore_operator.agentkit_marks import MissingInAgentKit
from opscore_operator.events import EventRecorder
from opscore_operator.ledger import Ledger
from opscore_operator.store import Key, ObjectCache, key_of
from opscore_operator.views import parse_agent
from opscore_operator.workqueue import WorkQueue

logger = logging.getLogger("opscore.agents")

# Agent status derived by the operator is written at most about once per this interval per
# agent: the end of one task and the dispatch of the next (milliseconds apart when work is
# queued, a few hundred on a loaded machine) become one write, and `kubectl get agents`
# still shows a dispatch or an outcome within a second. Decisions never wait for it (they
# read reports and the ledger).
AGENT_STATUS_DEBOUNCE_SECONDS = 0.5
# What changes with every report but no column a person reads at a glance (the raw state
# string, the counters of `-o wide`) is written once it has held still for
# AGENT_STATUS_QUIET_SECONDS, and at least every AGENT_STATUS_MAX_LAG_SECONDS while it keeps
# changing; in practice it rides along with the next visible change. Everything else
# (state, Ready, current task, Offline, Error, a new lastError...) is written at the next
# pass: docs/architecture.md "API writes per step" says what that costs.
AGENT_STATUS_QUIET_SECONDS = 2.0
AGENT_STATUS_MAX_LAG_SECONDS = 30.0
# A busy agent's `currentTask` is written once a task has been its current one for this
# long: an agent given tasks shorter than that back to back (B1's instant agents, a fleet
# draining a queue of quick steps) would otherwise cost one write per task for a column
# nobody can read at that speed. State and Ready still change at once (Idle -> Active,
# Active -> Idle, Offline...); while short tasks keep coming, the column lags by up to
# AGENT_STATUS_MAX_LAG_SECONDS. The run's own status always names the agent of each step.
AGENT_TASK_QUIET_SECONDS = 1.0
# An Active agent's move to Idle (its task ended and no other came) is written once it has
# stayed Idle for this long: an agent that drains a queue is Idle between two tasks for
# the tens of milliseconds the next dispatch takes, and each such gap a pass happened to
# see cost two writes (Idle, then Active again 0.5 s later) for a state nobody saw. With
# the 0.5 s debounce, `Idle` still shows within 1 s of a task's end (issue 14 asks that
# of `kubectl get agents`); dispatch never waits for it (it reads reports and the ledger).
AGENT_IDLE_QUIET_SECONDS = 0.4

AGENT_WRITES = Counter(
    "opscore_agent_status_writes_total", "Agent status writes, by result.", ["result"]
)
AGENT_RECONCILES = Counter(
    "opscore_agent_reconciles_total",
    "Agent reconcile passes, by result (error: retried after 1 s).",
    ["result"],
)
for _result in ("ok", "error"):
    AGENT_RECONCILES.labels(_result)  # exported at 0 from the start, so alerts see the series

# Fields of the status that the operator owns: all of them but the sidecar's `reports` and
# the `reportSequence` that fences their writes (by their wire names), so a field added to
# AgentStatus is written without a second edit.
_SIDECAR_FIELDS = frozenset({"reports", "report_sequence"})
_OPERATOR_FIELDS = tuple(
    info.alias or name
    for name, info in AgentStatus.model_fields.items()
    if name not in _SIDECAR_FIELDS
)


MERGE_RETRY_SECONDS = 0.2


class AgentIndex:
    """Which Agent objects hold which AgentKit id, per namespace (kept from watch events),
    so finding duplicates costs a dict lookup, not a scan, on the heartbeat path."""

    def __init__(self) -> None:
        self._ids: dict[Key, str] = {}
        self._holders: dict[tuple[str, str], set[str]] = {}

    def note(self, body: dict[str, Any]) -> None:
        key = key_of(body)
        agent_id = agent_id_of(body)
        old = self._ids.get(key)
        if old == agent_id:
            return
        if old is not None:
            self._discard(key, old)
        self._ids[key] = agent_id
        self._holders.setdefault((key[0], agent_id), set()).add(key[1])

    def drop(self, body: dict[str, Any]) -> None:
        key = key_of(body)
        old = self._ids.pop(key, None)
        if old is not None:
            self._discard(key, old)

    def _discard(self, key: Key, agent_id: str) -> None:
        names = self._holders.get((key[0], agent_id))
        if names is not None:
            names.discard(key[1])
            if not names:
                del self._holders[(key[0], agent_id)]

    def holders(self, namespace: str, agent_id: str) -> set[str]:
        return set(self._holders.get((namespace, agent_id), ()))


@dataclass(slots=True)
class _Held:
    """A routine status change not written yet: what it is, since when some change has
    waited, and when it last changed (monotonic seconds)."""

    wanted: dict[str, Any]
    since: float
    changed: float


class AgentReconciler:
    def __init__(
        self,
        *,
        kube: KubeClient,
        agents: ObjectCache,
        ledger: Ledger,
        missing_agents: MissingInAgentKit,
        queue: WorkQueue[Key],
        workflow_queue: WorkQueue[Key],
        recorder: EventRecorder,
        index: AgentIndex | None = None,
    ) -> None:
        self.kube = kube
        self.agents = agents
        self.ledger = ledger
        self.missing_agents = missing_agents
        self.queue = queue
        self.workflow_queue = workflow_queue
        self.recorder = recorder
        self.index = index or AgentIndex()
        self._absorbed: set[str] = set()  # uids of duplicates this process deleted
        self._conflicts_warned: dict[Key, tuple[str, ...]] = {}
        self._held: dict[Key, _Held] = {}  # routine changes not written yet

    async def worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.reconcile(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                AGENT_RECONCILES.labels("error").inc()
                logger.warning(
                    "agent %s/%s: status update failed (%s)",
                    *key,
                    exc,
                    extra={"namespace": key[0], "agent": key[1]},
                )
                self.queue.add_after(key, 1.0)
            else:
                AGENT_RECONCILES.labels("ok").inc()
            finally:
                self.queue.done(key)

    async def reconcile(self, key: Key) -> None:
        body = self.agents.get(key)
        parsed = parse_agent(self.agents, key)
        if body is None or parsed is None:
            self._held.pop(key, None)  # deleted: nothing is held for it any more
            return
        await self._ensure_label(key, body, parsed.spec.agent_id or key[1])
        if await self._merge_duplicates(key, parsed.spec.agent_id or key[1]):
            self.queue.add(key)  # derive from what the merge wrote
            return
        now = datetime.now(UTC)
        succeeded, failed = self.ledger.counter_deltas(key)
        usage_entries, used, unattributed = self.ledger.usage_deltas(key)
        current = self.ledger.current_task(key)
        workload = Workload(
            active_tasks=self.ledger.active(key),
            current_task=f"{current.workflow[1]}/{current.step}" if current else None,
            current_task_id=current.task_id if current else None,
            missing_reason=self.missing_agents.get(key),
            last_dispatch_at=self.ledger.last_dispatch.get(key),
            last_end_at=self.ledger.last_end.get(key),
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
                "usage": _added(parsed.status.usage, used),
                "unattributed_usage": _added(parsed.status.unattributed_usage, unattributed),
            }
        )
        old, new = _owned(parsed.status), _owned(derived)
        deadline = heartbeat_deadline(parsed.spec, parsed.status.reports)
        if deadline is not None and deadline > now:
            self.queue.add_after(key, (deadline - now).total_seconds() + 0.05)
        if _comparable(new) == _comparable(old) and not _last_seen_stale(old, derived):
            self._held.pop(key, None)  # back to what is written: nothing is held any more
            return
        if _notable(new) == _notable(old):
            wait = self._hold(key, _comparable(new), quiet=AGENT_STATUS_QUIET_SECONDS)
            if wait > 0:
                self.queue.add_after(key, wait)
                return
        elif _only_the_task_moved(old, new):
            wait = self._hold(key, _comparable(new), quiet=AGENT_TASK_QUIET_SECONDS)
            if wait > 0:
                self.queue.add_after(key, wait)
                return
        elif _only_went_idle(old, new):
            wait = self._hold(key, _comparable(new), quiet=AGENT_IDLE_QUIET_SECONDS)
            if wait > 0:
                self.queue.add_after(key, wait)
                return
        patch = {k: new.get(k) for k in set(old) | set(new) if old.get(k) != new.get(k)}
        try:
            updated = await self.kube.patch(AGENTS, key[0], key[1], {"status": patch}, status=True)
        except NotFound:
            return
        AGENT_WRITES.labels("ok").inc()
        self._held.pop(key, None)
        self.ledger.settle_counters(key, succeeded, failed)
        self.ledger.settle_usage(key, usage_entries)
        self.agents.upsert(updated)
        if parsed.status.state != derived.state and derived.state is not None:
            self._record_transition(body, parsed.status.state, derived)
            # Offline agents fail their in-flight steps: let those workflows see it.
            for workflow in self.ledger.workflows_on(key):
                self.workflow_queue.add(workflow)

    def _hold(self, key: Key, wanted: dict[str, Any], *, quiet: float) -> float:
        """Hold back a routine change until it has held still for `quiet` seconds (or has
        waited AGENT_STATUS_MAX_LAG_SECONDS); returns how long until it is due (<= 0: now)."""
        now = time.monotonic()
        held = self._held.get(key)
        if held is None:
            held = self._held[key] = _Held(wanted, since=now, changed=now)
        elif held.wanted != wanted:
            held.wanted, held.changed = wanted, now
        due = min(held.changed + quiet, held.since + AGENT_STATUS_MAX_LAG_SECONDS)
        return due - now

    def _record_transition(
        self, body: dict[str, Any], old: AgentState | None, derived: AgentStatus
    ) -> None:
        """Events for transitions a person cares about: trouble, and recovery from it.
        Active/Idle flips happen on every task and are visible in `kubectl get agents`."""
        new = derived.state
        if new in (AgentState.OFFLINE, AgentState.ERROR):
            detail = f": {derived.last_error}" if new is AgentState.ERROR else ""
            self.recorder.record(
                body,
                type="Warning",
                reason=f"Agent{new.value}",
                message=f"agent is {new.value}{detail}",
            )
        elif old is AgentState.OFFLINE and new is not None:
            self.recorder.record(
                body, type="Normal", reason="AgentAvailable", message=f"agent is back ({new.value})"
            )

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

    # -- one Agent per agent id -------------------------------------------------------------

    async def _merge_duplicates(self, key: Key, agent_id: str) -> bool:
        """When several Agents hold `agent_id`, absorb the ones Ops-Core created into the
        keeper (see `opscore_logic.registration`). Runs in the keeper's pass only; another
        holder just wakes the keeper. Returns whether the keeper changed (so this pass
        starts again from the cache)."""
        namespace = key[0]
        bodies = [
            body
            for name in sorted(self.index.holders(namespace, agent_id))
            if (body := self.agents.get((namespace, name))) is not None
            and body["metadata"].get("uid") not in self._absorbed
        ]
        plan = merge_plan(Holder.of(body) for body in bodies)
        if plan is None:
            return False
        if plan.keeper != key[1]:
            self.queue.add((namespace, plan.keeper))
            return False
        if plan.conflicts and self._conflicts_warned.get(key) != plan.conflicts:
            self._conflicts_warned[key] = plan.conflicts
            keeper = self.agents.get(key)
            if keeper is not None:
                self.recorder.record(
                    keeper,
                    type="Warning",
                    reason="DuplicateAgentId",
                    message=(
                        f"Agents {', '.join(plan.conflicts)} also hold agentId {agent_id!r}; "
                        f"reports go to {plan.keeper} (the oldest). Delete the extra ones."
                    ),
                )
        changed = False
        for name in plan.absorb:
            changed = await self._absorb(key, (namespace, name)) or changed
        return changed

    async def _absorb(self, keeper_key: Key, dup_key: Key) -> bool:
        """Merge the Ops-Core-created `dup_key` into `keeper_key`, then delete it.

        Order: registration fields the keeper lacks (spec), then the duplicate's reports
        (status, guarded by the keeper's resourceVersion), then the delete (guarded by the
        duplicate's resourceVersion: a report stored on it after we copied its reports
        makes the delete fail, and the next pass copies again; merging reports is
        idempotent). Counters are carried only once the delete succeeded, so they are
        never counted twice. Returns whether anything was written."""
        keeper, dup = self.agents.get(keeper_key), self.agents.get(dup_key)
        if keeper is None or dup is None:
            return False
        wrote = False
        fill = registration_fill(keeper.get("spec") or {}, dup.get("spec") or {})
        if fill:
            keeper = await self.kube.patch(AGENTS, *keeper_key, {"spec": fill})
            self.agents.upsert(keeper)
            wrote = True
        keeper_status = _status_of(keeper)
        dup_status = _status_of(dup)
        keeper_slots = (keeper.get("spec") or {}).get("maxConcurrentTasks")
        merged = merge_reports(
            keeper_status.reports,
            dup_status.reports,
            limit=report_limit(keeper_slots if isinstance(keeper_slots, int) else 1),
        )
        if merged != keeper_status.reports:
            # A new reportSequence, as every writer of `reports` gives it: a sidecar
            # holding the keeper's old list then fails its test and merges again.
            patch = {
                "metadata": {"resourceVersion": keeper["metadata"].get("resourceVersion")},
                "status": {
                    "reports": [report.wire() for report in merged],
                    "reportSequence": (keeper_status.report_sequence or 0) + 1,
                },
            }
            try:
                keeper = await self.kube.patch(AGENTS, *keeper_key, patch, status=True)
            except Conflict:
                self.queue.add_after(keeper_key, MERGE_RETRY_SECONDS)
                return wrote
            self.agents.upsert(keeper)
            wrote = True
        meta = dup["metadata"]
        try:
            await self.kube.delete(
                AGENTS,
                *dup_key,
                preconditions={
                    "uid": str(meta.get("uid")),
                    "resourceVersion": str(meta.get("resourceVersion")),
                },
            )
        except Conflict:
            self.queue.add_after(keeper_key, MERGE_RETRY_SECONDS)
            return wrote
        except NotFound:
            return wrote
        self._absorbed.add(str(meta.get("uid")))
        self.ledger.carry_counters(keeper_key, dup_status.tasks_succeeded, dup_status.tasks_failed)
        logger.info("agent %s/%s merged into %s", dup_key[0], dup_key[1], keeper_key[1])
        self.recorder.record(
            keeper,
            type="Normal",
            reason="AgentMerged",
            message=(
                f"took over Agent {dup_key[1]} that Ops-Core had created "
                f"({created_by(dup)}) for the same agentId, and deleted it"
            ),
        )
        return True


def _status_of(body: dict[str, Any]) -> AgentStatus:
    try:
        return AgentStatus.model_validate(body.get("status") or {})
    except ValidationError:
        return AgentStatus()


def _owned(status: AgentStatus) -> dict[str, Any]:
    wire = status.wire()
    return {k: wire[k] for k in _OPERATOR_FIELDS if k in wire}


LAST_SEEN_RESOLUTION_SECONDS = 30.0


def _last_seen_stale(old: dict[str, Any], derived: AgentStatus) -> bool:
    """`lastSeen` is refreshed when it lags by more than the resolution: `kubectl get`
    stays truthful without a write per heartbeat."""
    if derived.last_seen is None:
        return False
    written = parse_time(old.get("lastSeen"))
    if written is None:
        return True
    lag = derived.last_seen - written
    return lag.total_seconds() > LAST_SEEN_RESOLUTION_SECONDS


# Fields that may lag (see AGENT_STATUS_QUIET_SECONDS): not printed by `kubectl get agents`.
_ROUTINE_FIELDS = ("rawState", "tasksSucceeded", "tasksFailed", "usage", "unattributedUsage")


def _added(written: Usage | None, delta: Usage) -> Usage | None:
    """A usage counter plus what is still to add to it (None while nothing was counted)."""
    if delta.is_empty():
        return written
    return delta if written is None else written.plus(delta)


def _notable(owned: dict[str, Any]) -> dict[str, Any]:
    """What a change must touch to be written at once: `_comparable` without the fields
    that may lag. State, Ready and the current task are always written together, so the
    columns of `kubectl get agents` never contradict each other."""
    out = _comparable(owned)
    for name in _ROUTINE_FIELDS:
        out.pop(name, None)
    out["conditions"] = [  # `Available`'s message quotes the raw state: it may lag with it
        {**c, "message": ""}
        if c.get("type") == "Available" and c.get("reason") == "Reporting"
        else c
        for c in out["conditions"]
    ]
    return out


_TASK_FIELDS = ("currentTask", "currentTaskId")


def _only_the_task_moved(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """An agent that was Active and still is, now on another task (and nothing else a
    reader would notice changed): see AGENT_TASK_QUIET_SECONDS."""
    if old.get("state") != AgentState.ACTIVE.value or new.get("state") != AgentState.ACTIVE.value:
        return False
    if new.get("currentTask") is None:
        return False
    before, after = _notable(old), _notable(new)
    for name in _TASK_FIELDS:
        before.pop(name, None)
        after.pop(name, None)
    return before == after


# What a task's end changes on an agent that goes Idle (besides the Ready condition).
_RELEASE_FIELDS = ("state", "currentTask", "currentTaskId", "activeTasks")


def _only_went_idle(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """An Active agent now Idle because its task ended, and nothing else a reader would
    notice changed (an error, Offline, a pause are written at once): see
    AGENT_IDLE_QUIET_SECONDS."""
    if old.get("state") != AgentState.ACTIVE.value or new.get("state") != AgentState.IDLE.value:
        return False
    before, after = _notable(old), _notable(new)
    for side in (before, after):
        for name in _RELEASE_FIELDS:
            side.pop(name, None)
        side["conditions"] = [c for c in side["conditions"] if c.get("type") != "Ready"]
    return before == after


def _comparable(owned: dict[str, Any]) -> dict[str, Any]:
    """What must change to be worth a write: times that move on every report do not."""
    out = {k: v for k, v in owned.items() if k not in ("lastSeen", "stateSince")}
    out["conditions"] = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"}
        for c in owned.get("conditions", [])
    ]
    return out
