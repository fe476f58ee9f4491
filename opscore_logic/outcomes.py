"""What an agent's reports say about the task it was given.

Agents that send `details.opscore_task_id` are matched exactly. The reference agent sends
no task id: it does the work, then reports `active` and `idle` about 10 ms apart. For it,
the task is done when, among the reports received after the dispatch, the newest (by the
agent's timestamp) is idle, and failed when any of them is an error. A report received at
the very moment of the dispatch decision was read by that decision, so it counts as
before. Reports arrive over separate connections and out of order, so order comes from
timestamps, not arrival.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opscore_logic.agent_model import AgentReport, AgentState
from opscore_logic.lifecycle import normalise_state

TASK_ID_KEY = "opscore_task_id"


@dataclass(frozen=True, slots=True)
class Outcome:
    succeeded: bool
    message: str
    output: dict[str, Any] | None
    reported_at: datetime


def infer_outcome(
    reports: Sequence[AgentReport], *, task_id: str, dispatched_at: datetime
) -> Outcome | None:
    """The task's outcome if the reports tell it, else None (still running)."""
    exact = [r for r in reports if r.details.get(TASK_ID_KEY) == task_id]
    if exact:
        return _decide(exact)
    anonymous = [
        r for r in reports if TASK_ID_KEY not in r.details and r.received_at > dispatched_at
    ]
    return _decide(anonymous) if anonymous else None


def _decide(reports: Sequence[AgentReport]) -> Outcome | None:
    errors = [r for r in reports if normalise_state(r.state) is AgentState.ERROR]
    if errors:
        first = min(errors, key=lambda r: r.timestamp)
        return Outcome(False, _error_message(first), None, first.received_at)
    newest = max(reports, key=lambda r: (r.timestamp, r.received_at))
    if normalise_state(newest.state) is AgentState.IDLE:
        output = newest.details.get("output")
        return Outcome(
            True,
            "the agent reported the task done",
            output if isinstance(output, dict) else None,
            newest.received_at,
        )
    return None


def _error_message(report: AgentReport) -> str:
    code = report.details.get("error_code")
    message = report.details.get("message")
    if code and message:
        return f"{code}: {message}"
    if message or code:
        return str(message or code)
    return f"the agent reported {report.state!r}"
