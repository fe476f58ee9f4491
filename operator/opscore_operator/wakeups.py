"""Which waiting runs a freed agent wakes, and what the waiting room holds after a pass.

A run whose ready steps found no free agent waits in the `WaitingRoom` (in precedence
order) and costs nothing until an agent frees up: then, for each free slot, the first
waiting run that fits it is queued for a pass. These two rules are the whole contract
between the workflow reconciler and the waiting room.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from opscore_logic.decision import Decision
from opscore_logic.engine import WorkflowRef
from opscore_logic.selection import step_fits
from opscore_logic.workflow_model import Step, StepPhase, WorkflowSpec
from opscore_operator.agentpool import AgentPools
from opscore_operator.store import Key
from opscore_operator.waiting import Waiter, WaitingRoom
from opscore_operator.workqueue import WorkQueue


def update_waiting(
    waiting: WaitingRoom,
    key: Key,
    *,
    spec: WorkflowSpec,
    ref: WorkflowRef,
    steps: Sequence[Step] | None,
    decision: Decision,
) -> None:
    """Put the run in the room with the steps the pass left `Queued`, or take it out."""
    queued = {e.name for e in decision.status.steps if e.phase is StepPhase.QUEUED}
    if not queued or steps is None:
        waiting.remove(key)
        return
    waiting.set(
        Waiter(
            workflow=key,
            priority=spec.priority,
            created=ref.created or datetime.now(UTC),
            steps=tuple(s for s in steps if s.name in queued),
        )
    )


def wake_waiters(
    waiting: WaitingRoom,
    pools: AgentPools,
    queue: WorkQueue[Key],
    namespace: str,
    agents: set[str] | None = None,
) -> None:
    """Capacity may have appeared on `agents` (all of the namespace when None): wake,
    for each free slot, the first waiting workflow (by precedence) that fits it.

    A waiter whose pass is already due or under way is passed over: that pass decides
    from the agents free when it runs (or already decided), so giving it this slot too
    would wake nobody for it. Agents freed one by one (each task's end is its own call)
    then wake one waiter each, instead of all waking the first one while its write is
    in flight, which left every other agent idle. Waking one waiter too many costs a
    pass that finds no agent and changes nothing."""
    if not len(waiting):
        return
    pool = pools.namespace(namespace, datetime.now(UTC))
    views = pool.views
    names = pool.free_names() if agents is None else agents
    slots = {
        name: views[name].free_slots
        for name in pool.in_seen_order(names)
        if views[name].ready and views[name].free_slots > 0
    }
    if not slots:
        return
    for waiter in waiting.in_namespace(namespace):
        if not slots:
            return
        if queue.pending(waiter.workflow):
            continue
        for step in waiter.steps:
            fit = next((n for n in slots if step_fits(step, views[n])), None)
            if fit is not None:
                queue.add(waiter.workflow)
                slots[fit] -= 1
                if slots[fit] <= 0:
                    del slots[fit]
                break
