"""`kubectl opscore agents`: every agent, its state and whether it can take work.

Named by resource name, as `kubectl get agents`, Events and the step status name them (for
AgentKit agents it is derived from the `agentName` they registered under). READY shows the
Ready condition's reason, because "False" alone does not say whether the agent is paused,
offline or failing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from opscore_cli.humanize import age
from opscore_cli.style import AGENT_STATE_SGR, GREEN, RED, YELLOW, Style
from opscore_cli.table import Cell, cell, render_table
from opscore_logic.base import parse_time

HEADER = ("NAME", "STATE", "CURRENT TASK", "LAST SEEN", "SUCCEEDED", "FAILED", "READY")


def display_name(agent: Mapping[str, Any]) -> str:
    return str((agent.get("metadata") or {}).get("name") or "?")


def ready_condition(agent: Mapping[str, Any]) -> Mapping[str, Any]:
    for cond in (agent.get("status") or {}).get("conditions") or []:
        if isinstance(cond, Mapping) and cond.get("type") == "Ready":
            return cond
    return {}


def agent_rows(agents: Sequence[Mapping[str, Any]], now: datetime) -> list[list[Cell]]:
    """One row per agent, sorted by display name."""
    rows = []
    for agent in sorted(agents, key=display_name):
        status = agent.get("status") or {}
        state = str(status.get("state") or "Unknown")
        ready = ready_condition(agent)
        ok = ready.get("status")
        ready_sgr = GREEN if ok == "True" else RED if ok == "False" else YELLOW
        ready_text = str(ready.get("reason") or ok or "Unknown")
        last_seen = parse_time(status.get("lastSeen"))
        rows.append(
            [
                cell(display_name(agent)),
                cell(state, AGENT_STATE_SGR.get(state)),
                cell(status.get("currentTask") or "-"),
                cell(age(last_seen, now) + (" ago" if last_seen else "")),
                cell(int(status.get("tasksSucceeded") or 0)),
                cell(int(status.get("tasksFailed") or 0)),
                cell(ready_text, ready_sgr),
            ]
        )
    return rows


def render_agents(
    agents: Sequence[Mapping[str, Any]], now: datetime, style: Style, width: int | None = None
) -> str:
    return "\n".join(render_table(HEADER, agent_rows(agents, now), style, width)) + "\n"
