"""Request and response bodies of the sidecar's HTTP API (the AgentKit wire contract).

Field names are the contract (camelCase `agentId` next to snake_case `event_type`, exactly
as the AgentKit SDK and AgentKit send them), so the models spell them verbatim instead of
using an alias generator. Unknown keys are ignored: a newer SDK adding a field must not
turn every heartbeat into a 422.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from opscore_logic.usage import USAGE_KEY, ReportedUsage

MAX_DESCRIPTION_LENGTH = 1024  # the Agent CRD's spec.description maxLength
# Deeper `details` are refused with 422: pydantic cannot serialise a few hundred levels
# back into the Agent's status (it was a 500), and no real report needs more. (Outputs
# can echo a step's parameters, which the CRD lets nest deeply: hence not lower.)
MAX_DETAILS_DEPTH = 100

_REPORT_EXAMPLE: JsonDict = {
    "agentId": "3f1c6a52-8a43-4b7e-9d55-0f8e2f6f3b7a",
    "timestamp": "2026-11-25T08:34:07.847342+00:00",
    "state": "idle",
    "details": {},
}
_USAGE_REPORT_EXAMPLE: JsonDict = {
    "agentId": "3f1c6a52-8a43-4b7e-9d55-0f8e2f6f3b7a",
    "timestamp": "2026-11-25T08:34:09.120000+00:00",
    "state": "idle",
    "details": {
        "opscore_task_id": "6b0f1d1e-1f7a-4a59-9b1f-3c1f5d7c2a10:collect:0:1",
        "usage": {
            "input_tokens": 1200,
            "output_tokens": 350,
            "total_tokens": 1550,
            "model": "gpt-4o-mini",
            "cost": 0.00042,
            "currency": "USD",
        },
    },
}
# The documented keys of `details` (others are stored as they are).
_DETAILS_SCHEMA: JsonDict = {
    "properties": {
        "opscore_task_id": {
            "type": "string",
            "description": "The dispatched task this report is about (exact correlation).",
        },
        "error_code": {"type": "string"},
        "message": {"type": "string"},
        "output": {"type": "object", "description": "The task's small result."},
        USAGE_KEY: {
            **ReportedUsage.model_json_schema(),
            "description": (
                "Tokens and cost this report accounts for (each report's usage is added "
                "once). See docs/observability.md."
            ),
        },
    }
}
_ERROR_REPORT_EXAMPLE: JsonDict = {
    "agentId": "3f1c6a52-8a43-4b7e-9d55-0f8e2f6f3b7a",
    "timestamp": "2026-11-25T08:35:12.001200Z",
    "state": "error",
    "details": {"error_code": "TOOL_FAILED", "message": "search backend timed out"},
}


def nesting_depth(value: object, limit: int) -> int:
    """How deeply `value` nests objects and lists (`{}` is 1), counted only up to just
    past `limit`, without recursion: a hostile value must not exhaust the stack."""
    deepest = 0
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        if deepest > limit:
            break
        pending.extend((child, depth + 1) for child in children)
    return deepest


def as_utc(moment: datetime) -> datetime:
    """Aware UTC time; a naive time is taken to be UTC already (the SDK always sends one
    with an offset, so a naive one comes from a hand-written client that meant UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


class StateReport(BaseModel):
    """An agent's state report, as the AgentKit SDK sends it.

    `timestamp` accepts ISO-8601 with an offset (`+00:00`) or a trailing `Z`; a naive time
    is treated as UTC. It is stored in UTC.
    """

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [_REPORT_EXAMPLE, _ERROR_REPORT_EXAMPLE, _USAGE_REPORT_EXAMPLE]
        },
    )

    agentId: str = Field(
        min_length=1, max_length=253, description="Must equal the {agentId} in the path."
    )
    timestamp: datetime = Field(
        description=(
            "When the agent was in this state (ISO-8601; naive means UTC). At most "
            "OPSCORE_MAX_CLOCK_SKEW_SECONDS in the future."
        )
    )
    state: str = Field(
        min_length=1,
        max_length=64,
        description="Free string; initializing, idle, active, error (others are kept verbatim).",
    )
    details: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "For `error`: {error_code, message}. May carry opscore_task_id, output and "
            f"usage. At most {MAX_DETAILS_DEPTH} levels of nesting."
        ),
        json_schema_extra=_DETAILS_SCHEMA,
    )

    @field_validator("timestamp")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return as_utc(value)

    @field_validator("details", mode="before")
    @classmethod
    def _null_details(cls, value: object) -> object:
        """`details: null` means no details: tolerated rather than rejected."""
        return {} if value is None else value

    @field_validator("details")
    @classmethod
    def _not_too_deep(cls, value: dict[str, Any]) -> dict[str, Any]:
        if nesting_depth(value, MAX_DETAILS_DEPTH) > MAX_DETAILS_DEPTH:
            raise ValueError(f"details are nested deeper than {MAX_DETAILS_DEPTH} levels")
        return value

    @field_validator("details")
    @classmethod
    def _valid_usage(cls, value: dict[str, Any]) -> dict[str, Any]:
        """A bad `details.usage` is refused whole (422) rather than stored: the operator
        adds each stored usage to a run's and an agent's totals, so a wrong one would
        stay in them. The report is stored as sent (a derived total is not added)."""
        if USAGE_KEY not in value:
            return value
        raw = value[USAGE_KEY]
        if not isinstance(raw, dict):
            raise ValueError(f"details.usage must be an object, not {type(raw).__name__}")
        try:
            ReportedUsage.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc']) or 'usage'}: "
                f"{error['msg'].removeprefix('Value error, ')}"
                for error in exc.errors()
            )
            raise ValueError(f"details.usage is invalid: {problems}") from None
        return value


class Accepted(BaseModel):
    """The report is stored in the Agent's `status.reports`."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "success", "message": "State update accepted"}]}
    )

    status: Literal["success"] = "success"
    message: str = "State update accepted"


class AgentStateView(BaseModel):
    """The agent's newest report (by its own timestamp)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_REPORT_EXAMPLE]})

    agentId: str
    state: str
    details: dict[str, Any]
    timestamp: datetime


class ErrorBody(BaseModel):
    """Every error the sidecar itself answers (422 validation errors use FastAPI's list)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"detail": "agentId in body ('a') does not match path ('b')"}]
        }
    )

    detail: str


class Readiness(BaseModel):
    """`/readyz` when the sidecar can do its job."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "ready", "checks": {"kubernetes": True, "apiKeys": True}}]
        }
    )

    status: Literal["ready"] = "ready"
    checks: dict[str, bool] = Field(description="Each check and whether it passed.")


class NotReady(BaseModel):
    """`/readyz` when a check failed (`checks` is absent while the sidecar starts)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "detail": "not ready: kubernetes",
                    "checks": {"kubernetes": False, "apiKeys": True},
                }
            ]
        }
    )

    detail: str
    checks: dict[str, bool] | None = None


class AgentMetadata(BaseModel):
    """What AgentKit keeps as `metadata` (may also arrive as `{}` or `null`)."""

    model_config = ConfigDict(extra="ignore")

    description: str | None = None
    config: dict[str, Any] | None = None


_AGENT_DETAILS_EXAMPLE: JsonDict = {
    "agentId": "3f1c6a52-8a43-4b7e-9d55-0f8e2f6f3b7a",
    "agentName": "summariser",
    "version": "1.2.0",
    "capabilities": ["summarise", "translate"],
    "contactEndpoint": "http://summariser.agents.svc:9000/",
    "metadata": {"description": "Summarises documents", "config": {"model": "small"}},
    "registration_time": "2026-11-25T08:34:05.120000Z",
}


class AgentDetails(BaseModel):
    """The registered agent, as AgentKit describes it in the webhook."""

    model_config = ConfigDict(
        extra="ignore", json_schema_extra={"examples": [_AGENT_DETAILS_EXAMPLE]}
    )

    agentId: str = Field(min_length=1, max_length=253)
    agentName: str = Field(min_length=1, max_length=253)
    version: str = Field(max_length=64)
    capabilities: list[str] = Field(default_factory=list, max_length=64)
    contactEndpoint: str = Field(min_length=1, max_length=2048)
    metadata: AgentMetadata | None = None
    registration_time: datetime | None = None

    def description(self) -> str | None:
        """`metadata.description`, cut to what the Agent CRD stores (free text, so cutting
        beats refusing the whole registration)."""
        if self.metadata is None or self.metadata.description is None:
            return None
        return self.metadata.description[:MAX_DESCRIPTION_LENGTH]


class RegistrationEvent(BaseModel):
    """AgentKit's registration webhook body (`REGISTER` is the only event it sends)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [{"event_type": "REGISTER", "agent_details": _AGENT_DETAILS_EXAMPLE}]
        },
    )

    event_type: Literal["REGISTER"]
    agent_details: AgentDetails


class WebhookAccepted(BaseModel):
    """The registration is recorded in the Agent's spec."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "success",
                    "message": "Agent '3f1c6a52-8a43-4b7e-9d55-0f8e2f6f3b7a' registered",
                }
            ]
        }
    )

    status: Literal["success"] = "success"
    message: str


class WorkflowTrigger(BaseModel):
    """The earlier Ops-Core's workflow trigger: a definition by id or inline, and a payload.

    Exactly one of `workflowDefinitionId` and `workflowDefinition` must be set.
    """

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"workflowDefinitionId": "research-report", "initialPayload": {"topic": "llms"}}
            ]
        },
    )

    workflowDefinitionId: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description=(
            "A WorkflowTemplate in the sidecar's namespace: its name, or the id of an earlier "
            "Ops-Core definition imported with `kubectl opscore import`."
        ),
    )
    workflowDefinition: dict[str, Any] | None = Field(
        default=None,
        description=(
            "An inline definition in the earlier Ops-Core format: {id, name, description?, "
            "version, tasks: [{taskId, name, agentCapability, parameters, nextTaskId}]}."
        ),
    )
    initialPayload: dict[str, Any] | None = Field(
        default=None,
        description="Becomes the Workflow's `spec.inputs` (steps read `{{ inputs.NAME }}`).",
    )

    @model_validator(mode="after")
    def _exactly_one_definition(self) -> WorkflowTrigger:
        if (self.workflowDefinitionId is None) == (self.workflowDefinition is None):
            raise ValueError("set exactly one of workflowDefinitionId and workflowDefinition")
        return self


class WorkflowStarted(BaseModel):
    """The Workflow resource that runs the definition was created."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sessionId": "6b0f1d1e-1f7a-4a59-9b1f-3c1f5d7c2a10",
                    "workflowId": "research-report-x7k2p",
                    "message": "Workflow research-report-x7k2p started",
                }
            ]
        }
    )

    sessionId: str = Field(description="The Workflow's uid (also its `opscore_session_id`).")
    workflowId: str = Field(description="The Workflow's name: `kubectl get workflow <it>`.")
    message: str
