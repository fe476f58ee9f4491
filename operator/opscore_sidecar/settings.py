"""The sidecar's configuration, read from environment variables.

Names follow the earlier Ops-Core and AgentKit deployments (`OPSCORE_API_KEY`, `LOG_LEVEL`,
`OPSCORE_WEBHOOK_SECRET`) so existing manifests keep working; `KUBECONFIG` is the usual one.
Secrets are `SecretStr` so they never end up in a log line or a repr.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, HttpUrl, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from opscore_logic.log_level import LogLevel


class SidecarSettings(BaseSettings):
    """Environment: `OPSCORE_*`, plus `KUBECONFIG` and `LOG_LEVEL` without the prefix."""

    model_config = SettingsConfigDict(
        env_prefix="OPSCORE_", extra="ignore", populate_by_name=True, frozen=True
    )

    api_key: SecretStr | None = Field(
        default=None,
        description="OPSCORE_API_KEY: one API key agents send as `Authorization: Bearer`.",
    )
    api_keys_file: Path | None = Field(
        default=None,
        description=(
            "OPSCORE_API_KEYS_FILE: one key per line, `#` starts a comment line, optional "
            "scope `KEY agentId1,agentId2`. Re-read when its mtime changes (key rotation)."
        ),
    )
    namespace: str = Field(
        min_length=1,
        max_length=63,
        description="OPSCORE_NAMESPACE: the namespace where Agent objects live (required).",
    )
    kubeconfig: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KUBECONFIG", "kubeconfig"),
        description="KUBECONFIG: kubeconfig file; unset means ~/.kube/config, else in-cluster.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description=(
            "OPSCORE_WEBHOOK_SECRET: AgentKit's shared secret; without it the registration "
            "webhook answers 503."
        ),
    )
    dashboard_key: SecretStr | None = Field(
        default=None,
        description=(
            "OPSCORE_DASHBOARD_KEY: a read-only key for the dashboard (`/dashboard`), for "
            "people who should see runs and agents but never report as an agent. Unscoped "
            "API keys open the dashboard too; keys scoped to agents do not."
        ),
    )
    sidecar_host: str = Field(default="127.0.0.1", description="OPSCORE_SIDECAR_HOST.")
    sidecar_port: int = Field(default=8080, ge=0, le=65535, description="OPSCORE_SIDECAR_PORT.")
    log_level: LogLevel = Field(
        default="INFO",
        validation_alias=AliasChoices("LOG_LEVEL", "log_level"),
        description="LOG_LEVEL: DEBUG, INFO, WARNING, ERROR.",
    )
    max_body_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="OPSCORE_MAX_BODY_BYTES: larger request bodies get 413 before being read.",
    )
    max_clock_skew_seconds: float = Field(
        default=300.0,
        ge=0,
        description=(
            "OPSCORE_MAX_CLOCK_SKEW_SECONDS: a report timestamped further than this in the "
            "future is rejected with 422 (it would otherwise stay the 'newest' report)."
        ),
    )
    kube_qps: float = Field(
        # A runaway guard, not the API server's protection (its priority and fairness
        # is): each stored batch of reports is one request, so this caps durable
        # reports/s across agents, and must sit above the 250/s that issue 20 asks of one
        # replica (200, the earlier default, would have capped it by itself).
        default=400.0,
        gt=0,
        description=(
            "OPSCORE_KUBE_QPS: client-side rate limit towards the API server (each stored "
            "batch of reports is one request, so this caps reports/s across agents)."
        ),
    )
    kube_burst: int = Field(default=800, ge=1, description="OPSCORE_KUBE_BURST.")
    report_linger_seconds: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description=(
            "OPSCORE_REPORT_LINGER_SECONDS: how long a report that cannot finish a task "
            "(`active`) waits to share a write with the next one; 0 disables it "
            "(and the repeat linger below)."
        ),
    )
    report_repeat_linger_seconds: float = Field(
        default=5.0,
        ge=0,
        le=30,
        description=(
            "OPSCORE_REPORT_REPEAT_LINGER_SECONDS: how long a heartbeat that repeats the "
            "agent's stored state (it only refreshes liveness) may wait to share a write; "
            "never more than a tenth of the agent's heartbeatTimeoutSeconds, never less "
            "than OPSCORE_REPORT_LINGER_SECONDS, off when that is 0."
        ),
    )
    rate_limit_per_key: float = Field(
        default=2000.0,
        ge=0,
        description=(
            "OPSCORE_RATE_LIMIT_PER_KEY: requests/s one API key may make on the agent API "
            "(reports, state reads, workflow triggers) before it gets 429; 0 turns it off. "
            "With one key shared by all agents this is a global ceiling."
        ),
    )
    rate_limit_per_key_burst: int = Field(
        default=4000, ge=1, description="OPSCORE_RATE_LIMIT_PER_KEY_BURST: requests at once."
    )
    rate_limit_per_agent: float = Field(
        default=50.0,
        ge=0,
        description=(
            "OPSCORE_RATE_LIMIT_PER_AGENT: requests/s on the agent API for one agent id "
            "before 429; 0 turns it off. A reference agent sends 2 reports per task."
        ),
    )
    rate_limit_per_agent_burst: int = Field(
        default=100, ge=1, description="OPSCORE_RATE_LIMIT_PER_AGENT_BURST: requests at once."
    )
    trigger_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description=(
            "OPSCORE_TRIGGER_CACHE_SECONDS: how long a WorkflowTrigger, its Secret and its "
            "template, once read, are used before being read again (0: every call reads)."
        ),
    )
    access_log: bool = Field(
        default=False, description="OPSCORE_ACCESS_LOG: log every HTTP request (uvicorn)."
    )
    keepalive_seconds: int = Field(
        default=75,
        ge=1,
        le=3600,
        description=(
            "OPSCORE_KEEPALIVE_SECONDS: how long an idle HTTP connection is kept open. Longer "
            "than any client's or proxy's own idle limit (httpx 5 s, HAProxy/ingress 60 s), so "
            "the sidecar never closes a connection a client is reusing at that moment: the "
            "report would be lost, as the AgentKit SDK does not retry."
        ),
    )
    jaeger_url: HttpUrl | None = Field(
        default=None,
        description=(
            "OPSCORE_JAEGER_URL: the Jaeger UI (e.g. `https://jaeger.example.com`); the "
            "dashboard then links each run to its trace at `{url}/trace/{traceId}`."
        ),
    )

    @field_validator(
        "api_key",
        "webhook_secret",
        "dashboard_key",
        "api_keys_file",
        "kubeconfig",
        "jaeger_url",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """`OPSCORE_API_KEY=` in a manifest means "no key", not "the empty key"."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _some_key_source(self) -> SidecarSettings:
        if self.api_key is None and self.api_keys_file is None:
            raise ValueError("set OPSCORE_API_KEY and/or OPSCORE_API_KEYS_FILE")
        return self
