"""The sidecar's long-lived parts, built once per process and shared by every request."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, Request, status

from opscore_sidecar.agent_directory import AgentDirectory, KubeApi
from opscore_sidecar.auth import KeyStore
from opscore_sidecar.ratelimit import RateLimits
from opscore_sidecar.reports import ReportWriter
from opscore_sidecar.responses import RETRY_AFTER_SECONDS
from opscore_sidecar.settings import SidecarSettings
from opscore_sidecar.trigger_desk import TriggerDesk


@dataclass(frozen=True, slots=True)
class Sidecar:
    """Settings, keys, the Kubernetes client, the agent directory, the report writer, the
    rate limits and the webhook triggers' cached reads."""

    settings: SidecarSettings
    keys: KeyStore
    kube: KubeApi
    directory: AgentDirectory
    writer: ReportWriter
    limits: RateLimits
    triggers: TriggerDesk

    @classmethod
    def build(cls, settings: SidecarSettings, keys: KeyStore, kube: KubeApi) -> Sidecar:
        directory = AgentDirectory(kube, settings.namespace)
        return cls(
            settings,
            keys,
            kube,
            directory,
            ReportWriter(
                kube,
                directory,
                linger=settings.report_linger_seconds,
                repeat_linger=settings.report_repeat_linger_seconds,
            ),
            RateLimits.configured(
                key_rate=settings.rate_limit_per_key,
                key_burst=settings.rate_limit_per_key_burst,
                agent_rate=settings.rate_limit_per_agent,
                agent_burst=settings.rate_limit_per_agent_burst,
            ),
            TriggerDesk(kube, ttl=settings.trigger_cache_seconds),
        )


async def get_sidecar(request: Request) -> Sidecar:
    """FastAPI dependency: the running sidecar (503 while it is still starting)."""
    sidecar = getattr(request.app.state, "sidecar", None)
    if not isinstance(sidecar, Sidecar):
        raise HTTPException(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="The sidecar is starting",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return sidecar
