"""Which first status write can wait: a new run queued behind busy agents.

A run whose status was never written reads as `phase: Pending` (the CRD defaults it).
When the engine's first decision for it only says "every ready step waits for a free
slot on agents that exist and are ready", writing that tells `kubectl get` nothing the
default does not, and under a backlog it would be one more API write for every queued
run. So that write is skipped; the run is written when its first step is dispatched.

It is not skipped when the wait needs a person (no agent fits, or the fitting ones are
offline, paused or unknown to AgentKit: status says which), nor when anything else
happened (a step skipped or invalid, a Warning), nor when the run has a deadline (its
clock starts at the first write's `startTime`, so that write must not move).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from opscore_logic.decision import Decision
from opscore_logic.selection import AgentView, step_fits
from opscore_logic.workflow_model import (
    Step,
    StepPhase,
    WorkflowPhase,
    WorkflowSpec,
    WorkflowStatus,
)


def serves_in(agents: Mapping[str, AgentView]) -> Callable[[Step], bool]:
    """`serves` computed over `agents` (all of them: for tests and small pools)."""

    def serves(step: Step) -> bool:
        return any((a.ready or a.busy) and step_fits(step, a) for a in agents.values())

    return serves


def deferrable_first_write(
    *,
    old: WorkflowStatus,
    decision: Decision,
    spec: WorkflowSpec,
    steps: Sequence[Step] | None,
    serves: Callable[[Step], bool],
) -> bool:
    """True when `decision` is a never-written run's first status and only says that its
    steps wait for capacity (see the module docstring). `serves(step)`: some agent that
    fits the step is ready, or not ready only because every slot is taken."""
    if old.phase is not None or steps is None:
        return False
    if decision.dispatches or decision.releases or decision.delete:
        return False
    if spec.deadline_seconds is not None or spec.suspend or spec.cancel:
        return False
    if decision.status.phase is not WorkflowPhase.RUNNING:
        return False
    if any(event.type == "Warning" for event in decision.events):
        return False
    by_name = {step.name: step for step in steps}
    queued = False
    for entry in decision.status.steps:
        if entry.phase is StepPhase.PENDING:
            continue
        step = by_name.get(entry.name)
        if entry.phase is not StepPhase.QUEUED or step is None:
            return False
        if not serves(step):
            return False
        queued = True
    return queued
