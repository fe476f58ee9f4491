"""Operator settings, from environment variables (a ConfigMap in a cluster)."""

from __future__ import annotations

import logging

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    log_level: str = Field(
        default="INFO",
        validation_alias="LOG_LEVEL",
        description="LOG_LEVEL: DEBUG, INFO, WARNING, ERROR.",
    )
    post_normal_events: bool = Field(
        default=True, description="Post Normal Events (Warnings are always posted)."
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

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if not isinstance(logging.getLevelName(level), int):
            raise ValueError(f"unknown log level {value!r}")
        return level
