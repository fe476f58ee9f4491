"""What one pass of the engine decides: the new status and the actions around it
(dispatches, released tasks, Events, when to look again), and the ids they carry."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from opscore_logic.attribution import AttemptUsage
from opscore_logic.selection import AgentView
from opscore_logic.workflow_model import StepStatus, WorkflowStatus


@dataclass(frozen=True, slots=True)
class WorkflowRef:
    """Identity of the run (task ids are derived from its uid)."""

    namespace: str
    name: str
    uid: str
    generation: int = 1
    created: datetime | None = None


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Send this task to this agent (after the status naming it has been written)."""

    step: str
    agent: str
    agent_id: str
    task_id: str
    task_name: str
    parameters: dict[str, Any]
    attempt: int


@dataclass(frozen=True, slots=True)
class FailedDispatch:
    """A dispatch whose POST to AgentKit did not end in a 202, and why.

    `maybe_delivered`: the request was sent whole and its answer lost (a timeout or a
    connection cut off after sending), so AgentKit may have scheduled it. Such an attempt
    is sent again under the same task id (at least once, the duplicate visible to the
    agent by `opscore_task_id`); any other runs again as a new attempt (the task surely
    never reached an agent)."""

    why: str
    maybe_delivered: bool = False


@dataclass(frozen=True, slots=True)
class Release:
    """A task no longer in flight on `agent` (for the ledger and the agent's counters).

    `step` names the step it ran, for logs. `reported_at` is when the sidecar received the
    report that decided the outcome (None when no report did: timeouts, offline, cancels);
    the operator measures step-advance latency from it to the next dispatch. `usage`:
    what the ended attempt's reports said it used (already added to the step's status;
    the operator adds it to the agent's counters and the metrics).
    """

    agent: str
    task_id: str
    result: Literal["succeeded", "failed", "abandoned"]
    step: str = ""
    reported_at: datetime | None = None
    usage: AttemptUsage = field(default_factory=AttemptUsage)


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """A Kubernetes Event to post. `progress` marks the routine ones (a run started, a
    step was dispatched): status already records them, so the operator posts them only
    when asked to (each Event is an API write, and a busy run has many)."""

    reason: str
    message: str
    type: Literal["Normal", "Warning"] = "Normal"
    progress: bool = False


@dataclass(slots=True)
class Decision:
    status: WorkflowStatus
    dispatches: list[Dispatch] = field(default_factory=list)
    releases: list[Release] = field(default_factory=list)
    events: list[EngineEvent] = field(default_factory=list)
    requeue_after: float | None = None
    delete: bool = False

    def wake_at(self, moment: datetime, now: datetime) -> None:
        delay = max(0.0, (moment - now).total_seconds())
        self.requeue_after = delay if self.requeue_after is None else min(self.requeue_after, delay)


def task_id_for(ref: WorkflowRef, step: str, generation: int, attempt: int) -> str:
    """Deterministic task id: the same attempt always has the same id."""
    return f"{ref.uid}:{step}:{generation}:{attempt}"


def release(
    entry: StepStatus,
    result: Literal["succeeded", "failed", "abandoned"],
    agents: dict[str, AgentView] | None,
    decision: Decision,
    reported_at: datetime | None = None,
    usage: AttemptUsage | None = None,
) -> None:
    """The entry's attempt is no longer in flight: release it, and give its slot back to
    this pass's view of the agent (the ledger frees it too, so the next pass would)."""
    if not entry.agent or not entry.task_id:
        return
    decision.releases.append(
        Release(
            entry.agent, entry.task_id, result, entry.name, reported_at, usage or AttemptUsage()
        )
    )
    if agents is not None and entry.agent in agents:
        view = agents[entry.agent]
        agents[entry.agent] = replace(view, free_slots=view.free_slots + 1)
