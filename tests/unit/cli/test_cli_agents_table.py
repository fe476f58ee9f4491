"""`kubectl opscore agents` and the kubectl-style ages it prints."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from opscore_cli.agents_table import render_agents
from opscore_cli.humanize import age, duration
from opscore_cli.style import Style

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def agent(name: str, agent_name: str | None, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"agentName": agent_name} if agent_name else {},
        "status": status,
    }


def test_one_row_per_agent_by_resource_name_with_state_task_age_counts_and_ready_reason() -> None:
    agents = [
        agent(
            "writer",
            "Writer",
            state="Active",
            currentTask="hello/draft",
            lastSeen="2026-11-25T08:59:30Z",
            tasksSucceeded=3,
            tasksFailed=1,
            conditions=[{"type": "Ready", "status": "False", "reason": "Busy"}],
        ),
        agent(
            "researcher",
            "Research Agent",
            state="Idle",
            lastSeen="2026-11-25T08:55:00Z",
            conditions=[{"type": "Ready", "status": "True", "reason": "Ready"}],
        ),
        agent("bare", None),
    ]
    lines = render_agents(agents, NOW, Style()).splitlines()
    assert re.split(r"\s{2,}", lines[0]) == [
        "NAME",
        "STATE",
        "CURRENT TASK",
        "LAST SEEN",
        "SUCCEEDED",
        "FAILED",
        "READY",
    ]
    assert [line.split() for line in lines[1:]] == [
        ["bare", "Unknown", "-", "-", "0", "0", "Unknown"],
        ["researcher", "Idle", "-", "5m", "ago", "0", "0", "Ready"],
        ["writer", "Active", "hello/draft", "30s", "ago", "3", "1", "Busy"],
    ]


def test_colour_only_when_asked() -> None:
    rows = [agent("a", "a", state="Error", conditions=[{"type": "Ready", "status": "False"}])]
    assert "\x1b[" not in render_agents(rows, NOW, Style(color=False))
    assert "\x1b[31mError\x1b[0m" in render_agents(rows, NOW, Style(color=True))


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.44, "0s"),
        (59, "59s"),
        (119, "119s"),
        (150, "2m30s"),
        (600, "10m"),
        (3 * 3600 + 60, "3h1m"),
        (9 * 3600, "9h"),
        (3 * 86400 + 3600, "3d1h"),
        (40 * 86400, "40d"),
        (800 * 86400, "2y"),
    ],
)
def test_durations_read_like_kubectl(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_short_step_durations_keep_a_decimal() -> None:
    assert duration(2.06, precise=True) == "2.1s"
    assert duration(12.5, precise=True) == "12s"
    assert duration(None) == "-"
    assert age(NOW - timedelta(seconds=90), NOW) == "90s"
    assert age(None, NOW) == "-"
