"""Which agent takes a step: by name, or by capabilities and labels among ready agents."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from opscore_logic.agent_model import AgentReport
from opscore_logic.workflow_model import Step


@dataclass(frozen=True, slots=True)
class AgentView:
    """What the engine needs to know of one agent (built by the operator from the Agent
    resource and its own ledger of tasks in flight).

    `ready`: the agent takes work at all (reporting, not paused, known to AgentKit, in a
    state that accepts tasks). `free_slots`: how many more tasks it takes now, i.e. its
    concurrency minus every task in flight on it in the ledger (this workflow's included).
    When the engine releases a task (settled, timed out, refused by AgentKit), it hands
    the slot back within the same pass, as the ledger will, so the next step can go to
    the same agent at once. An operator that also folds "no free slot" into
    `ready=False` stays safe; it only loses that shortcut (the next step then waits for
    another pass). `busy`: not ready only because every slot is taken (a step that fits
    it waits for capacity, not for a person)."""

    name: str
    agent_id: str
    agent_name: str | None = None
    capabilities: frozenset[str] = frozenset()
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: bool = False
    busy: bool = False
    free_slots: int = 0
    offline: bool = False
    last_dispatch_at: datetime | None = None
    reports: Sequence[AgentReport] = ()
    # Tasks in flight on it when the pass began (all workflows'): usage reported without a
    # task id is a step's only while the agent runs just that one (`usage.attempt_usage`).
    tasks_in_flight: int = 0

    def matches_name(self, wanted: str) -> bool:
        return wanted in (self.name, self.agent_name, self.agent_id)


def step_fits(step: Step, agent: AgentView) -> bool:
    """Whether `agent` is one the step may run on (ignoring whether it is free now)."""
    if step.agent is not None:
        return agent.matches_name(step.agent)
    if not set(step.capabilities or ()) <= agent.capabilities:
        return False
    selector = step.agent_selector.match_labels if step.agent_selector else {}
    return all(agent.labels.get(k) == v for k, v in selector.items())


def select_agent(step: Step, agents: Iterable[AgentView]) -> AgentView | None:
    """The ready agent with a free slot that fits, least recently dispatched to first,
    ties broken by name (deterministic)."""
    candidates = [a for a in agents if a.ready and a.free_slots > 0 and step_fits(step, a)]
    if not candidates:
        return None
    return min(candidates, key=dispatch_order)


def dispatch_order(agent: AgentView) -> tuple[datetime, str]:
    """The order `select_agent` prefers agents in: least recently dispatched to, then name."""
    return (_utc(agent.last_dispatch_at), agent.name)


def _utc(moment: datetime | None) -> datetime:
    """Comparable in UTC (never dispatched sorts first; naive times are taken as UTC)."""
    if moment is None:
        return _NEVER
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


_NEVER = datetime.min.replace(tzinfo=UTC)


def why_no_agent(step: Step, agents: Iterable[AgentView]) -> str:
    """A one-line reason for a Queued step, for status and `kubectl describe`."""
    return queued_message(step, sum(1 for a in agents if step_fits(step, a)))


def queued_message(step: Step, fitting: int) -> str:
    """`why_no_agent`, given how many agents fit the step (ready or not)."""
    if step.agent is not None:
        if not fitting:
            return f"waiting for agent {step.agent!r} (no such Agent yet)"
        return f"waiting for agent {step.agent!r} to become ready"
    wanted = ", ".join(step.capabilities or []) or "any capability"
    if not fitting:
        return f"waiting for an agent with capabilities [{wanted}] (none registered)"
    return f"waiting for a free agent with capabilities [{wanted}] ({fitting} busy or not ready)"
