"""Operator settings, from environment variables (a ConfigMap in a cluster)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from opscore_logic.log_level import LogLevel


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPSCORE_", extra="ignore")

    agentkit_url: str = Field(
        default="http://127.0.0.1:8001", description="Base URL of AgentKit's HTTP API."
    )
    kubeconfig: str | None = Field(
        default=None,
        validation_alias="KUBECONFIG",
        description="Kubeconfig path; in-cluster service account when unset.",
    )
    workers: int = Field(default=16, ge=1, description="Concurrent workflow reconciles.")
    dispatch_timeout_seconds: float = Field(default=10.0, gt=0)
    default_step_timeout_seconds: int = Field(
        default=3600,
        ge=0,
        le=604800,
        description=(
            "OPSCORE_DEFAULT_STEP_TIMEOUT_SECONDS: the attempt timeout of steps without "
            "`timeoutSeconds`, so a lost dispatch or outcome ends in a retry (or a visible "
            "`TimedOut`), never a step that waits forever; 0 turns it off."
        ),
    )
    dispatch_attempts: int = Field(
        default=4, ge=1, description="Tries per dispatch on connection errors and 5xx."
    )
    api_qps: float = Field(default=200.0, gt=0, description="Client-side API rate limit.")
    api_burst: int = Field(default=400, ge=1)
    metrics_port: int = Field(
        default=0,
        ge=0,
        description="OPSCORE_METRICS_PORT: Prometheus /metrics on this port; 0: off.",
    )
    log_level: LogLevel = Field(
        default="INFO",
        validation_alias="LOG_LEVEL",
        description="LOG_LEVEL: DEBUG, INFO, WARNING, ERROR.",
    )
    post_normal_events: bool = Field(
        default=True, description="Post Normal Events (Warnings are always posted)."
    )
    normal_events_per_second: float = Field(
        default=1.0,
        gt=0,
        description=(
            "OPSCORE_NORMAL_EVENTS_PER_SECOND: the budget of Normal Events (outcomes), "
            "refilled at this rate; over it they are skipped and counted. Warnings have none."
        ),
    )
    normal_event_burst: int = Field(
        default=10, ge=1, description="OPSCORE_NORMAL_EVENT_BURST: Normal Events at once."
    )
    progress_events: bool = Field(
        default=False,
        description=(
            "OPSCORE_PROGRESS_EVENTS: also post the routine Normal Events (WorkflowRunning, "
            "StepDispatched). Off by default: status records the same facts, and each Event "
            "is one more API write per step. Outcomes and Warnings are always posted."
        ),
    )
    namespace: str | None = Field(
        default=None,
        description="OPSCORE_NAMESPACE: where Agents found by polling AgentKit are created.",
    )
    agentkit_poll_seconds: float = Field(
        default=0.0,
        ge=0,
        description=(
            "OPSCORE_AGENTKIT_POLL_SECONDS: poll AgentKit's `GET /v1/agents` this often to "
            "discover agents whose webhook was lost; 0 (the default) turns polling off. The "
            "real AgentKit has no such endpoint: a 404 is logged once and otherwise ignored."
        ),
    )

    leader_election: bool = Field(
        default=False,
        description=(
            "OPSCORE_LEADER_ELECTION: run as one of several replicas; only the holder of the "
            "Lease acts, the others keep their caches warm (docs/operations.md). Off: this "
            "process is the only operator for its namespaces."
        ),
    )
    leader_election_namespace: str | None = Field(
        default=None,
        description=(
            "OPSCORE_LEADER_ELECTION_NAMESPACE: where the Lease lives (the operator's own "
            "namespace); defaults to OPSCORE_NAMESPACE, then to the first watched namespace."
        ),
    )
    leader_election_lease_name: str = Field(
        default="opscore-operator",
        description="OPSCORE_LEADER_ELECTION_LEASE_NAME: one Lease per shard of namespaces.",
    )
    leader_election_identity: str | None = Field(
        default=None,
        validation_alias="POD_NAME",
        description="POD_NAME: this replica's name in the Lease (default: hostname_random).",
    )
    lease_duration_seconds: float = Field(default=15.0, gt=0)
    renew_deadline_seconds: float = Field(default=10.0, gt=0)
    retry_period_seconds: float = Field(default=2.0, gt=0)
