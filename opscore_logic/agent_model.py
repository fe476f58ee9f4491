"""The Agent resource: what an agent is (spec) and how it is (status).

`status.reports` belongs to the sidecar alone (it writes what agents say); every other
status field belongs to the operator (it derives them). Two writers never share a field,
so merge patches from both never lose each other's updates.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from opscore_logic.base import WireModel
from opscore_logic.conditions import Condition
from opscore_logic.usage import Usage

# `status.reports` holds at most MAX_REPORTS (the CRD's maxItems); the sidecar keeps what
# `report_log.report_limit(maxConcurrentTasks)` says, as a longer list costs the API server
# more CPU on every write of it (issue 20). 64 is room for agents of up to 31 task slots.
MAX_REPORTS = 64
MIN_REPORTS = 4


class AgentState(StrEnum):
    """Normalised agent state (the raw reported string is kept next to it)."""

    INITIALIZING = "Initializing"
    IDLE = "Idle"
    ACTIVE = "Active"
    ERROR = "Error"
    OFFLINE = "Offline"
    UNKNOWN = "Unknown"


class AgentSpec(WireModel):
    """What the agent is: identity in AgentKit, what it can do, how Ops-Core treats it."""

    agent_id: str | None = Field(
        default=None,
        max_length=253,
        description=(
            "AgentKit's id for the agent, verbatim (it need not be a valid Kubernetes name). "
            "Defaults to metadata.name. Reports and dispatches use this id."
        ),
    )
    previous_agent_id: str | None = Field(
        default=None,
        max_length=253,
        description=(
            "The id AgentKit gave the agent before its latest registration (AgentKit hands "
            "out a new id when it re-registers an agent it forgot). Reports still sent "
            "under it land on this Agent; dispatches use agentId only. Set by the webhook."
        ),
    )
    agent_name: str | None = Field(
        default=None,
        max_length=253,
        description=(
            "Human-readable name registered in AgentKit (unique there). Agents Ops-Core "
            "creates are named after it; an agent registering again under this name with a "
            "new id updates this Agent."
        ),
    )
    version: str | None = Field(default=None, max_length=64, description="Agent version.")
    description: str | None = Field(
        default=None, max_length=1024, description="What the agent is for."
    )
    capabilities: list[Annotated[str, StringConstraints(max_length=253)]] = Field(
        default_factory=list,
        max_length=64,
        description="Capabilities the agent offers; workflow steps select agents by them.",
    )
    contact_endpoint: str | None = Field(
        default=None, max_length=2048, description="URL AgentKit forwards tasks to."
    )
    heartbeat_timeout_seconds: int = Field(
        default=300,
        ge=1,
        le=86400,
        description="Silence longer than this marks the agent Offline (Available=False).",
    )
    max_concurrent_tasks: int = Field(
        default=1, ge=1, le=64, description="How many tasks Ops-Core gives it at once."
    )
    paused: bool = Field(
        default=False,
        description="Cordon: the agent finishes its current task but gets no new ones.",
    )


class AgentReport(WireModel):
    """One state report from the agent, as the sidecar stored it."""

    state: str = Field(max_length=64, description="The state string exactly as reported.")
    timestamp: datetime = Field(description="When the agent says it was in that state.")
    received_at: datetime = Field(description="When the sidecar accepted the report.")
    details: dict[str, Any] = Field(
        default_factory=dict,
        description="The report's details object (error_code/message, opscore_task_id, output).",
    )


class AgentStatus(WireModel):
    """How the agent is: the sidecar's raw reports and what the operator derives from them."""

    reports: list[AgentReport] = Field(
        default_factory=list,
        max_length=MAX_REPORTS,
        description=(
            "The latest reports, oldest first, ordered by report timestamp. Written only by "
            "the sidecar."
        ),
    )
    report_sequence: int | None = Field(
        default=None,
        ge=0,
        description=(
            "Counts the writes of `reports`; every write tests it and adds one, so two "
            "sidecar replicas (or the operator's duplicate merge) never replace each "
            "other's reports. Written only with `reports`."
        ),
    )
    state: AgentState | None = Field(
        default=None,
        description=(
            "Normalised state: Active while a task Ops-Core gave the agent is in flight "
            "(whatever it last reported), else from its newest report and the heartbeat."
        ),
    )
    raw_state: str | None = Field(default=None, description="Last reported state, verbatim.")
    state_since: datetime | None = Field(default=None, description="When `state` last changed.")
    last_seen: datetime | None = Field(default=None, description="When it last reported.")
    current_task: str | None = Field(
        default=None,
        description="What it is doing, as WORKFLOW/STEP (the oldest task, if several).",
    )
    current_task_id: str | None = Field(
        default=None, description="The `opscore_task_id` of that task."
    )
    active_tasks: int = Field(default=0, ge=0, description="Tasks dispatched, not yet done.")
    tasks_succeeded: int = Field(default=0, ge=0, description="Tasks it finished.")
    tasks_failed: int = Field(default=0, ge=0, description="Tasks that failed or timed out.")
    last_error: str | None = Field(default=None, description="The last error it reported.")
    usage: Usage | None = Field(
        default=None, description="Usage of the tasks it ended, counted with the steps'."
    )
    unattributed_usage: Usage | None = Field(
        default=None,
        description=(
            "Usage it reported without a task id while running several tasks: counted "
            "here, on no step (send opscore_task_id to have it attributed)."
        ),
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="`Ready` (can take work), `Available` (heard from).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    observed_generation: int | None = Field(
        default=None, description="The spec generation the operator last acted on."
    )
