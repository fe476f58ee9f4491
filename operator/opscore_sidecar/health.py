"""Probes and metrics: `/healthz` (the process serves), `/readyz` (it can do its job),
`/metrics` (Prometheus text format)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from opscore_sidecar.components import Sidecar, get_sidecar
from opscore_sidecar.schemas import NotReady, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """Alive: the event loop answers. Deliberately checks nothing else, so an API-server
    outage makes the sidecar unready, never restarted."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness",
    response_model=Readiness,
    responses={
        503: {"model": NotReady, "description": "Not ready; `detail` says which check failed."}
    },
)
async def readyz(sidecar: Annotated[Sidecar, Depends(get_sidecar)]) -> Response:
    """Ready when the Kubernetes API server answers /readyz and at least one key is loaded
    (without a key every report would get 401)."""
    sidecar.keys.refresh()
    checks: dict[str, Any] = {
        "kubernetes": await sidecar.kube.readyz(),
        "apiKeys": sidecar.keys.loaded,
    }
    if all(checks.values()):
        return JSONResponse({"status": "ready", "checks": checks})
    failed = ", ".join(name for name, ok in checks.items() if not ok)
    return JSONResponse(
        {"detail": f"not ready: {failed}", "checks": checks},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format.",
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
        }
    },
)
async def metrics() -> Response:
    """Every series of the process (the sidecar's, the Kubernetes client's, Python's)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
