"""The agent lifecycle: from raw reports to a normalised state, `Available` and `Ready`.

Nothing here is stored as a transition: every field is recomputed from the sidecar's raw
reports, the operator's workload (tasks it gave the agent, AgentKit's 404s) and the clock,
so a restarted operator derives exactly what the one before it did.

State (`status.state`, the raw string stays in `status.rawState`):

    no report yet ............................ Unknown
    latest report (by its timestamp) ......... its normalised state
      initializing/starting -> Initializing    idle/ready/finished -> Idle
      active/busy/running   -> Active          error/failed        -> Error
      offline/stopped       -> Offline         anything else       -> Unknown (raw kept)
    silent longer than heartbeatTimeoutSeconds  Offline, whatever it said last
    a task Ops-Core gave it still in flight .. Active, whatever it said last (unless Offline)
    `active` about a task that has ended ..... Idle (see below)

The last rule is what Ops-Core knows better than the agent: it dispatched the task and has
not seen it end, so the agent is working on it, even while its last report still says
`idle` (the reference agent reports only after its work) or something unknown. So the state,
`Ready` and the current task never contradict each other in `kubectl get agents`.

The rule after it is the converse: an `active` received between Ops-Core's last dispatch
to the agent and the end of its last task, when nothing Ops-Core gave it is in flight any
more, was about that task, and the task has ended in Ops-Core's eyes (its attempt timed
out, or its workflow was deleted). That happens when the `idle` after it was lost (the
SDK never retries a report the sidecar could not take: a sidecar restart or an API server
outage). Holding the agent `Active` until it reports again would take it out of service
for good, since a reference agent reports only around work it is given. The cost: an
agent that really is still busy with the abandoned task may be given the next one (as
with a retry sent to it). The last dispatch is known to this operator process only (after
a restart, such an agent stays `Active` until it reports again: docs/reliability.md). An
`active` received after the last task ended is work Ops-Core did not give it, and holds
the agent as before.

`Available` (heard from recently): True/Reporting while the last report is younger than
the heartbeat timeout; False/NoReports before the first report, False/HeartbeatTimeout
after the silence, False/ReportedOffline when the agent itself said it is going away.

`Ready` (can take a task now), first reason that applies:
    Paused                    spec.paused (a cordon: the current task still finishes)
    NotRegisteredInAgentKit   AgentKit answered 404 for the agent's id
    Unavailable               Available is False
    State<state>              Initializing, Active (busy with work Ops-Core did not give
                              it), Offline, Unknown (the state shown, after the rule above)
    Busy                      as many tasks in flight as spec.maxConcurrentTasks
    Ready                     Idle or Error (an agent that failed a task takes the next
                              one), or Active only because of work Ops-Core gave it

`lastError` is the message of the newest error report still in the report log (else the
previous value): an error followed 10 ms later by `idle` is still seen.
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
    last_dispatch_at: datetime | None = None  # when this process last gave it a task
    last_end_at: datetime | None = None  # when the last task this process gave it ended


def observed_state(spec: AgentSpec, reports: Sequence[AgentReport], now: datetime) -> AgentState:
    """Normalised state including heartbeat expiry."""
    latest = latest_report(reports)
    if latest is None:
        return AgentState.UNKNOWN
    seen = last_seen(reports)
    if seen is not None and now - seen > timedelta(seconds=spec.heartbeat_timeout_seconds):
        return AgentState.OFFLINE
    return normalise_state(latest.state)


def shown_state(
    observed: AgentState, workload: Workload, reports: Sequence[AgentReport] = ()
) -> AgentState:
    """The state to show and route by: Active while a task Ops-Core gave the agent is in
    flight, Idle when its `active` was about such a task that has ended (see the module
    docstring), else what its reports and the clock say. Offline still wins: a silent
    agent's tasks are about to fail, and the column must say why."""
    if workload.active_tasks > 0 and observed is not AgentState.OFFLINE:
        return AgentState.ACTIVE
    if observed is AgentState.ACTIVE and _about_ended_work(reports, workload):
        return AgentState.IDLE
    return observed


def _about_ended_work(reports: Sequence[AgentReport], workload: Workload) -> bool:
    latest = latest_report(reports)
    return (
        workload.active_tasks == 0
        and workload.last_dispatch_at is not None
        and workload.last_end_at is not None
        and latest is not None
        and workload.last_dispatch_at <= latest.received_at <= workload.last_end_at
    )


def is_available(spec: AgentSpec, reports: Sequence[AgentReport], now: datetime) -> bool:
    """Heard from within the heartbeat timeout, and not saying it is going offline."""
    return _availability(spec, reports, now)[0]


def _availability(
    spec: AgentSpec, reports: Sequence[AgentReport], now: datetime
) -> tuple[bool, str, str]:
    latest = latest_report(reports)
    seen = last_seen(reports)
    if latest is None or seen is None:
        return False, "NoReports", "the agent has not reported yet"
    if now - seen > timedelta(seconds=spec.heartbeat_timeout_seconds):
        return False, "HeartbeatTimeout", f"no report within {spec.heartbeat_timeout_seconds}s"
    if normalise_state(latest.state) is AgentState.OFFLINE:
        return False, "ReportedOffline", f"the agent reported {latest.state!r}"
    return True, "Reporting", f"last report {latest.state!r}"


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
    state = shown_state(observed_state(spec, status.reports, now), workload, status.reports)
    latest = latest_report(status.reports)
    available, available_reason, available_message = _availability(spec, status.reports, now)
    since = status.state_since if status.state == state and status.state_since else now

    conditions = set_condition(
        status.conditions,
        type="Available",
        status="True" if available else "False",
        reason=available_reason,
        message=available_message,
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
            "last_error": last_error(status.reports) or status.last_error,
            "conditions": conditions,
            "observed_generation": generation,
        }
    )


def last_error(reports: Sequence[AgentReport]) -> str | None:
    """The message of the newest error report (by the agent's timestamp), if any."""
    errors = [r for r in reports if normalise_state(r.state) is AgentState.ERROR]
    if not errors:
        return None
    newest = max(errors, key=lambda r: (r.timestamp, r.received_at))
    message = newest.details.get("message") or newest.details.get("error_code")
    return str(message) if message else f"agent reported {newest.state!r}"


def readiness(
    spec: AgentSpec, reports: Sequence[AgentReport], workload: Workload, now: datetime
) -> tuple[bool, str, str]:
    """(ready, reason, message) of the `Ready` condition: the one rule the status and the
    operator's routing both use, so what `kubectl get` says is what the scheduler does."""
    state = shown_state(observed_state(spec, reports, now), workload, reports)
    return _readiness(spec, state, is_available(spec, reports, now), workload)


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
