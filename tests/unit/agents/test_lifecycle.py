"""The agent lifecycle: raw reports -> normalised state, `Available` and `Ready`."""

from __future__ import annotations

from datetime import datetime

import pytest
from engine_harness import T0, report, seconds

from opscore_logic.agent_model import AgentReport, AgentSpec, AgentState, AgentStatus
from opscore_logic.conditions import get_condition
from opscore_logic.lifecycle import (
    Workload,
    accepts_work,
    derive_status,
    heartbeat_deadline,
    is_available,
    latest_report,
    normalise_state,
    observed_state,
)

SPEC = AgentSpec(heartbeat_timeout_seconds=60, max_concurrent_tasks=2)


def derive(
    *reports: AgentReport,
    now: datetime | None = None,
    spec: AgentSpec = SPEC,
    workload: Workload | None = None,
    previous: AgentStatus | None = None,
) -> AgentStatus:
    status = (previous or AgentStatus()).model_copy(update={"reports": list(reports)})
    return derive_status(
        spec=spec,
        status=status,
        workload=workload or Workload(),
        now=now or T0 + seconds(1),
        generation=3,
    )


def condition(status: AgentStatus, type_: str) -> tuple[str, str]:
    cond = get_condition(status.conditions, type_)
    assert cond is not None
    return cond.status, cond.reason


# -- normalising -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("idle", AgentState.IDLE),
        ("IDLE", AgentState.IDLE),
        (" ready ", AgentState.IDLE),
        ("finished", AgentState.IDLE),
        ("active", AgentState.ACTIVE),
        ("BUSY", AgentState.ACTIVE),
        ("initializing", AgentState.INITIALIZING),
        ("starting", AgentState.INITIALIZING),
        ("error", AgentState.ERROR),
        ("Failed", AgentState.ERROR),
        ("offline", AgentState.OFFLINE),
        ("stopped", AgentState.OFFLINE),
        ("dreaming", AgentState.UNKNOWN),
        ("", AgentState.UNKNOWN),
    ],
)
def test_reported_states_are_normalised_case_insensitively(raw: str, state: AgentState) -> None:
    assert normalise_state(raw) is state


def test_the_latest_report_is_the_newest_by_the_agents_timestamp() -> None:
    newer = report("idle", T0 + seconds(2), received=T0 + seconds(2))
    older_but_late = report("active", T0 + seconds(1), received=T0 + seconds(3))
    assert latest_report([newer, older_but_late]) is newer


def test_equal_timestamps_are_broken_by_arrival() -> None:
    first = report("active", T0, received=T0)
    second = report("idle", T0, received=T0 + seconds(1))
    assert latest_report([second, first]) is second


def test_no_reports_have_no_latest() -> None:
    assert latest_report([]) is None


# -- state and availability ----------------------------------------------------------------


def test_an_agent_that_never_reported_is_unknown_and_unavailable() -> None:
    assert observed_state(SPEC, [], T0) is AgentState.UNKNOWN
    assert not is_available(SPEC, [], T0)
    assert heartbeat_deadline(SPEC, []) is None


def test_the_state_is_the_latest_reports() -> None:
    reports = [report("active", T0), report("idle", T0 + seconds(1))]
    assert observed_state(SPEC, reports, T0 + seconds(2)) is AgentState.IDLE


def test_silence_beyond_the_heartbeat_timeout_means_offline() -> None:
    reports = [report("idle", T0)]
    assert observed_state(SPEC, reports, T0 + seconds(60)) is AgentState.IDLE
    assert is_available(SPEC, reports, T0 + seconds(60))
    assert observed_state(SPEC, reports, T0 + seconds(61)) is AgentState.OFFLINE
    assert not is_available(SPEC, reports, T0 + seconds(61))


def test_the_heartbeat_deadline_follows_the_last_arrival() -> None:
    reports = [report("idle", T0, received=T0 + seconds(5)), report("active", T0 + seconds(1))]
    assert heartbeat_deadline(SPEC, reports) == T0 + seconds(65)


def test_idle_and_error_agents_accept_work() -> None:
    assert accepts_work(AgentState.IDLE, Workload())
    assert accepts_work(AgentState.ERROR, Workload())


def test_an_active_agent_accepts_work_only_if_opscore_gave_it_the_work() -> None:
    assert not accepts_work(AgentState.ACTIVE, Workload())
    assert accepts_work(AgentState.ACTIVE, Workload(active_tasks=1))


@pytest.mark.parametrize("state", [AgentState.INITIALIZING, AgentState.OFFLINE, AgentState.UNKNOWN])
def test_other_states_do_not_accept_work(state: AgentState) -> None:
    assert not accepts_work(state, Workload())


# -- derived status ------------------------------------------------------------------------


def test_an_idle_reporting_agent_is_available_and_ready() -> None:
    status = derive(report("idle", T0))
    assert status.state is AgentState.IDLE
    assert status.raw_state == "idle"
    assert status.last_seen == T0
    assert condition(status, "Available") == ("True", "Reporting")
    assert condition(status, "Ready") == ("True", "Ready")
    assert status.observed_generation == 3


def test_an_agent_without_reports_is_not_available() -> None:
    status = derive()
    assert status.state is AgentState.UNKNOWN
    assert condition(status, "Available") == ("False", "NoReports")
    assert condition(status, "Ready") == ("False", "Unavailable")


def test_a_silent_agent_times_out_its_heartbeat() -> None:
    status = derive(report("idle", T0), now=T0 + seconds(120))
    assert status.state is AgentState.OFFLINE
    assert condition(status, "Available") == ("False", "HeartbeatTimeout")
    assert condition(status, "Ready") == ("False", "Unavailable")


def test_a_paused_agent_is_not_ready() -> None:
    status = derive(report("idle", T0), spec=SPEC.model_copy(update={"paused": True}))
    assert condition(status, "Ready") == ("False", "Paused")
    assert condition(status, "Available") == ("True", "Reporting")


def test_an_agent_agentkit_does_not_know_is_not_ready() -> None:
    status = derive(report("idle", T0), workload=Workload(missing_reason="404 from AgentKit"))
    ready = get_condition(status.conditions, "Ready")
    assert ready is not None
    assert (ready.status, ready.reason, ready.message) == (
        "False",
        "NotRegisteredInAgentKit",
        "404 from AgentKit",
    )


def test_an_agent_at_its_concurrency_limit_is_busy() -> None:
    status = derive(report("active", T0), workload=Workload(active_tasks=2, current_task="t1"))
    assert condition(status, "Ready") == ("False", "Busy")
    assert (status.active_tasks, status.current_task) == (2, "t1")


def test_an_agent_below_its_limit_takes_more_work_while_active_for_us() -> None:
    status = derive(report("active", T0), workload=Workload(active_tasks=1))
    assert condition(status, "Ready") == ("True", "Ready")


@pytest.mark.parametrize("raw", ["idle", "active", "error", "dreaming", "initializing"])
def test_a_task_in_flight_reads_active_whatever_the_agent_last_reported(raw: str) -> None:
    one = AgentSpec(heartbeat_timeout_seconds=60)
    status = derive(
        report(raw, T0), spec=one, workload=Workload(active_tasks=1, current_task="w/s")
    )
    assert (status.state, status.current_task) == (AgentState.ACTIVE, "w/s")
    assert condition(status, "Ready") == ("False", "Busy")
    assert status.raw_state == raw


def test_a_silent_agent_with_a_task_in_flight_reads_offline() -> None:
    status = derive(report("idle", T0), now=T0 + seconds(61), workload=Workload(active_tasks=1))
    assert status.state is AgentState.OFFLINE


def test_the_end_of_the_task_reads_idle() -> None:
    busy = derive(report("idle", T0), workload=Workload(active_tasks=1, current_task="w/s"))
    done = derive(report("idle", T0), previous=busy)
    assert (done.state, done.current_task) == (AgentState.IDLE, None)
    assert condition(done, "Ready") == ("True", "Ready")


def test_an_agent_busy_with_work_from_elsewhere_is_not_ready() -> None:
    status = derive(report("active", T0))
    assert condition(status, "Ready") == ("False", "StateActive")


# An `active` whose `idle` was lost: the task it was about has ended in Ops-Core's eyes.
ENDED = Workload(last_dispatch_at=T0, last_end_at=T0 + seconds(10))


def test_an_active_about_a_task_that_has_ended_reads_idle_and_ready() -> None:
    status = derive(report("active", T0 + seconds(1)), now=T0 + seconds(11), workload=ENDED)
    assert (status.state, status.raw_state) == (AgentState.IDLE, "active")
    assert condition(status, "Ready") == ("True", "Ready")


def test_an_active_after_the_last_task_ended_is_work_from_elsewhere() -> None:
    status = derive(report("active", T0 + seconds(12)), now=T0 + seconds(13), workload=ENDED)
    assert status.state is AgentState.ACTIVE
    assert condition(status, "Ready") == ("False", "StateActive")


def test_an_active_before_the_last_dispatch_is_work_from_elsewhere() -> None:
    at = T0 - seconds(1)
    status = derive(report("active", at), now=T0 + seconds(11), workload=ENDED)
    assert condition(status, "Ready") == ("False", "StateActive")


def test_without_a_task_ended_in_this_process_an_active_holds_the_agent() -> None:
    status = derive(
        report("active", T0 + seconds(1)),
        now=T0 + seconds(11),
        workload=Workload(last_dispatch_at=T0),
    )
    assert condition(status, "Ready") == ("False", "StateActive")


def test_an_initializing_agent_is_not_ready_yet() -> None:
    assert condition(derive(report("initializing", T0)), "Ready") == ("False", "StateInitializing")


def test_an_error_report_records_the_last_error_and_still_takes_work() -> None:
    status = derive(report("error", T0, error_code="E1", message="disk full"))
    assert status.state is AgentState.ERROR
    assert status.last_error == "disk full"
    assert condition(status, "Ready") == ("True", "Ready")


def test_an_error_without_details_names_the_raw_state() -> None:
    assert derive(report("FAILED", T0)).last_error == "agent reported 'FAILED'"


def test_the_last_error_survives_recovery() -> None:
    failed = derive(report("error", T0, message="boom"))
    recovered = derive(report("idle", T0 + seconds(2)), previous=failed, now=T0 + seconds(3))
    assert recovered.state is AgentState.IDLE
    assert recovered.last_error == "boom"


def test_state_since_moves_only_when_the_state_changes() -> None:
    first = derive(report("idle", T0), now=T0 + seconds(1))
    same = derive(report("idle", T0 + seconds(5)), previous=first, now=T0 + seconds(6))
    changed = derive(report("active", T0 + seconds(7)), previous=same, now=T0 + seconds(8))
    assert first.state_since == same.state_since == T0 + seconds(1)
    assert changed.state_since == T0 + seconds(8)


def test_condition_transition_times_move_only_when_their_status_changes() -> None:
    first = derive(report("idle", T0), now=T0 + seconds(1))
    busy = derive(
        report("active", T0 + seconds(2)),
        previous=first,
        now=T0 + seconds(3),
        workload=Workload(active_tasks=2),
    )
    still_busy = derive(
        report("active", T0 + seconds(4)),
        previous=busy,
        now=T0 + seconds(5),
        workload=Workload(active_tasks=2),
    )

    def since(status: AgentStatus, type_: str) -> object:
        cond = get_condition(status.conditions, type_)
        assert cond is not None
        return cond.last_transition_time

    assert since(first, "Available") == since(busy, "Available") == T0 + seconds(1)
    assert since(busy, "Ready") == since(still_busy, "Ready") == T0 + seconds(3)


def test_deriving_never_touches_the_sidecars_reports() -> None:
    reports = [report("idle", T0)]
    assert derive(*reports).reports == reports
