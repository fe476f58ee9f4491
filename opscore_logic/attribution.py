"""Whose usage a report is: the step attempt it belongs to, or nobody's.

A report carrying `opscore_task_id` belongs to that attempt. One without it belongs to
the attempt the agent was running when it was received, if the agent was running just
one; with several tasks in flight (`maxConcurrentTasks` > 1) it cannot be told whose it
is, and is counted on the agent as unattributed instead (never on a guessed step).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from opscore_logic.agent_model import AgentReport
from opscore_logic.outcomes import TASK_ID_KEY
from opscore_logic.usage import Usage, as_usage, reported_usage, total


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """One report's usage with its model, for the per-model metrics."""

    model: str
    usage: Usage


@dataclass(frozen=True, slots=True)
class AttemptUsage:
    """What an ended attempt's reports say it used.

    `attributed`: reports carrying the attempt's task id, plus reports without a task id
    received after the dispatch when the agent had only this task in flight.
    `unattributed`: reports without a task id received after the dispatch while the agent
    had several tasks in flight (whose they are cannot be told); counted on the agent,
    never on a step."""

    attributed: tuple[ModelUsage, ...] = ()
    unattributed: tuple[ModelUsage, ...] = ()

    def attributed_total(self) -> Usage:
        return total(m.usage for m in self.attributed)


def attempt_usage(
    reports: Iterable[AgentReport],
    *,
    task_id: str,
    dispatched_at: datetime,
    tasks_in_flight: int,
) -> AttemptUsage:
    """Split the usage in `reports` that belongs to the attempt `task_id` (see
    `AttemptUsage`). Reports are the agent's deduplicated log, so a report delivered twice
    is one report here."""
    attributed: list[ModelUsage] = []
    unattributed: list[ModelUsage] = []
    for report in reports:
        usage = reported_usage(report.details)
        if usage is None:
            continue
        owner = report.details.get(TASK_ID_KEY)
        item = ModelUsage(usage.model or "unknown", as_usage(usage))
        if owner == task_id:
            attributed.append(item)
        elif owner is None and report.received_at > dispatched_at:
            (attributed if tasks_in_flight <= 1 else unattributed).append(item)
    return AttemptUsage(tuple(attributed), tuple(unattributed))
