"""The agent lifecycle: from raw reports to a normalised state, `Available` and `Ready`.

State machine (derived, never stored as transitions):

    no report yet ............................ Unknown
    latest report (by its timestamp) ......... its normalised state
      initializing/starting -> Initializing    idle/ready/finished -> Idle
      active/busy/running   -> Active          error/failed        -> Error
      offline/stopped       -> Offline         anything else       -> Unknown (raw kept)
    silent longer than heartbeatTimeoutSeconds  Offline (Available=False)

`Ready` (can take work now) needs Available, not paused, known to AgentKit, a free slot,
and a state of Idle or Error (an agent that failed a task still takes the next one), or
Active only because of work Ops-Core gave it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from opscore_logic.agent_model import AgentReport, AgentSpec, AgentState, AgentStatus
from opscore_logic.conditions import set_condition

_NORMAL: dict[str, AgentState] = {
    "initializing": AgentState.INITIALIZING,
    "initialising": AgentState.INITIALIZING,
    "starting": AgentState.INITIALIZING,
    "idle": AgentState.IDLE,
    "ready": AgentState.IDLE,
    "finished": AgentState.IDLE,
    "completed": AgentState.IDLE,
    "done": AgentState.IDLE,
    "active": AgentState.ACTIVE,
    "busy": AgentState.ACTIVE,
    "running": AgentState.ACTIVE,
    "working": AgentState.ACTIVE,
    "error": AgentState.ERROR,
    "failed": AgentState.ERROR,
    "failure": AgentState.ERROR,
    "offline": AgentState.OFFLINE,
    "stopped": AgentState.OFFLINE,
    "shutdown": AgentState.OFFLINE,
}


def normalise_state(raw: str) -> AgentState:
    """The normalised state for a raw reported string (case-insensitive, never raises)."""
    return _NORMAL.get(raw.strip().lower(), AgentState.UNKNOWN)


def latest_report(reports: Sequence[AgentReport]) -> AgentReport | None:
    """The report with the newest agent timestamp (ties: the one received last)."""
    if not reports:
        return None
    return max(reports, key=lambda r: (r.timestamp, r.received_at))


def last_seen(reports: Sequence[AgentReport]) -> datetime | None:
    return max((r.received_at for r in reports), default=None)


@dataclass(frozen=True, slots=True)
class Workload:
    """What the operator knows about an agent that its reports do not say."""

    active_tasks: int = 0
    current_task: str | None = None
    current_task_id: str | None = None
    missing_reason: str | None = None  # e.g. AgentKit answered 404 for it


def observed_state(spec: AgentSpec, reports: Sequence[AgentReport], now: datetime) -> AgentState:
    """Normalised state including heartbeat expiry."""
    latest = latest_report(reports)
    if latest is None:
        return AgentState.UNKNOWN
    seen = last_seen(reports)
    if seen is not None and now - seen > timedelta(seconds=spec.heartbeat_timeout_seconds):
        return AgentState.OFFLINE
    return normalise_state(latest.state)


def is_available(spec: AgentSpec, reports: Sequence[AgentReport], now: datetime) -> bool:
    seen = last_seen(reports)
    return seen is not None and now - seen <= timedelta(seconds=spec.heartbeat_timeout_seconds)


def accepts_work(state: AgentState, workload: Workload) -> bool:
    """Whether the state allows one more task (capacity is checked separately)."""
    if state in (AgentState.IDLE, AgentState.ERROR):
        return True
    return state is AgentState.ACTIVE and workload.active_tasks > 0


def heartbeat_deadline(spec: AgentSpec, reports: Sequence[AgentReport]) -> datetime | None:
    """When the agent turns Offline unless it reports again."""
    seen = last_seen(reports)
    return None if seen is None else seen + timedelta(seconds=spec.heartbeat_timeout_seconds)


def derive_status(
    *,
    spec: AgentSpec,
    status: AgentStatus,
    workload: Workload,
    now: datetime,
    generation: int | None,
) -> AgentStatus:
    """The operator-owned status fields, recomputed from reports and workload."""
    state = observed_state(spec, status.reports, now)
    latest = latest_report(status.reports)
    available = is_available(spec, status.reports, now)
    since = status.state_since if status.state == state and status.state_since else now

    last_error = status.last_error
    if latest is not None and state is AgentState.ERROR:
        message = latest.details.get("message") or latest.details.get("error_code")
        last_error = str(message) if message else f"agent reported {latest.state!r}"

    conditions = set_condition(
        status.conditions,
        type="Available",
        status="True" if available else "False",
        reason="Reporting" if available else ("HeartbeatTimeout" if latest else "NoReports"),
        message=(
            f"last report {latest.state!r}"
            if available and latest
            else f"no report within {spec.heartbeat_timeout_seconds}s"
            if latest
            else "the agent has not reported yet"
        ),
        now=now,
        generation=generation,
    )
    ready, reason, message = _readiness(spec, state, available, workload)
    conditions = set_condition(
        conditions,
        type="Ready",
        status="True" if ready else "False",
        reason=reason,
        message=message,
        now=now,
        generation=generation,
    )
    return status.model_copy(
        update={
            "state": state,
            "raw_state": latest.state if latest else None,
            "state_since": since,
            "last_seen": last_seen(status.reports),
            "current_task": workload.current_task,
            "current_task_id": workload.current_task_id,
            "active_tasks": workload.active_tasks,
            "last_error": last_error,
            "conditions": conditions,
            "observed_generation": generation,
        }
    )


def _readiness(
    spec: AgentSpec, state: AgentState, available: bool, workload: Workload
) -> tuple[bool, str, str]:
    if spec.paused:
        return False, "Paused", "spec.paused is true: finishing current work, taking no new tasks"
    if workload.missing_reason:
        return False, "NotRegisteredInAgentKit", workload.missing_reason
    if not available:
        return False, "Unavailable", "the agent is not reporting"
    if not accepts_work(state, workload):
        return False, f"State{state.value}", f"the agent is {state.value}"
    if workload.active_tasks >= spec.max_concurrent_tasks:
        return (
            False,
            "Busy",
            f"running {workload.active_tasks} of {spec.max_concurrent_tasks} tasks",
        )
    return True, "Ready", "the agent can take a task"
