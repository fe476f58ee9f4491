"""Lifecycle rules added for issue 5: agents that say they go offline, errors seen only in
passing, and one readiness rule for status and routing alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from opscore_logic.agent_model import AgentReport, AgentSpec, AgentState, AgentStatus
from opscore_logic.conditions import get_condition
from opscore_logic.lifecycle import (
    Workload,
    derive_status,
    is_available,
    last_error,
    readiness,
)

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
SPEC = AgentSpec(heartbeat_timeout_seconds=3)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def report(state: str, second: float, **details: object) -> AgentReport:
    return AgentReport(
        state=state, timestamp=at(second), received_at=at(second), details=dict(details)
    )


def derive(*reports: AgentReport, now: float, previous: AgentStatus | None = None) -> AgentStatus:
    status = (previous or AgentStatus()).model_copy(update={"reports": list(reports)})
    return derive_status(spec=SPEC, status=status, workload=Workload(), now=at(now), generation=1)


def cond(status: AgentStatus, type_: str) -> tuple[str, str]:
    found = get_condition(status.conditions, type_)
    assert found is not None
    return found.status, found.reason


def test_an_agent_that_says_it_goes_offline_is_not_available() -> None:
    status = derive(report("idle", 0), report("shutdown", 1), now=1.5)
    assert status.state is AgentState.OFFLINE
    assert status.raw_state == "shutdown"
    assert cond(status, "Available") == ("False", "ReportedOffline")
    assert cond(status, "Ready") == ("False", "Unavailable")


def test_an_unknown_raw_state_is_kept_and_shown_as_unknown() -> None:
    status = derive(report("Pondering", 0), now=1)
    assert (status.state, status.raw_state) == (AgentState.UNKNOWN, "Pondering")
    assert cond(status, "Available") == ("True", "Reporting")
    assert cond(status, "Ready") == ("False", "StateUnknown")


def test_the_full_heartbeat_cycle_offline_then_back_on_the_next_report() -> None:
    idle = derive(report("idle", 0), now=1)
    assert cond(idle, "Available") == ("True", "Reporting")
    silent = derive(report("idle", 0), now=3.01, previous=idle)
    assert silent.state is AgentState.OFFLINE
    assert cond(silent, "Available") == ("False", "HeartbeatTimeout")
    back = derive(report("idle", 0), report("idle", 10), now=10.5, previous=silent)
    assert back.state is AgentState.IDLE
    assert back.state_since == at(10.5)
    assert cond(back, "Ready") == ("True", "Ready")


def test_an_error_followed_at_once_by_idle_still_sets_the_last_error() -> None:
    reports = [report("error", 0, error_code="E", message="disk full"), report("idle", 0.01)]
    status = derive(*reports, now=1)
    assert status.state is AgentState.IDLE
    assert status.last_error == "disk full"


def test_the_newest_error_wins() -> None:
    reports = [report("error", 0, message="first"), report("error", 2, error_code="SECOND")]
    assert last_error(reports) == "SECOND"
    assert last_error([report("idle", 0)]) is None


@pytest.mark.parametrize(
    ("workload", "paused", "expected"),
    [
        (Workload(), False, (True, "Ready")),
        (Workload(), True, (False, "Paused")),
        (Workload(missing_reason="404"), False, (False, "NotRegisteredInAgentKit")),
        (Workload(active_tasks=1), False, (False, "Busy")),
    ],
)
def test_readiness_is_what_the_ready_condition_says(
    workload: Workload, paused: bool, expected: tuple[bool, str]
) -> None:
    spec = SPEC.model_copy(update={"paused": paused})
    reports = [report("idle", 0)]
    ready, reason, _ = readiness(spec, reports, workload, at(1))
    assert (ready, reason) == expected
    status = derive_status(
        spec=spec,
        status=AgentStatus(reports=reports),
        workload=workload,
        now=at(1),
        generation=1,
    )
    assert cond(status, "Ready") == ("True" if expected[0] else "False", expected[1])


def test_availability_is_measured_from_arrival_not_the_agents_clock() -> None:
    skewed = AgentReport(state="idle", timestamp=at(-3600), received_at=at(0), details={})
    assert is_available(SPEC, [skewed], at(2))
