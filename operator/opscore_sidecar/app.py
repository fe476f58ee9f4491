"""The sidecar's FastAPI application: wiring, error mapping and the OpenAPI document.

`create_app(settings, kube)` builds everything; pass a `kube` to inject a client (tests
pass an in-memory fake), or leave it out and the app connects at startup (KUBECONFIG, else
the in-cluster service account) and closes the client at shutdown.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from opscore_kube import KubeApiError, KubeClient, Unavailable
from opscore_sidecar import (
    dashboard,
    health,
    openapi,
    report_endpoint,
    trigger_endpoint,
    webhook,
    workflow_start,
)
from opscore_sidecar.agent_directory import CreateContended, KubeApi
from opscore_sidecar.auth import KeyStore
from opscore_sidecar.components import Sidecar
from opscore_sidecar.http_metrics import ResponseMetricsMiddleware
from opscore_sidecar.middleware import BodyLimitMiddleware, RequestIdMiddleware
from opscore_sidecar.responses import RETRY_AFTER_SECONDS
from opscore_sidecar.settings import SidecarSettings
from opscore_sidecar.tracing import ReportSpans

logger = logging.getLogger("opscore.sidecar")


def _version() -> str:
    try:
        return version("opscore")
    except PackageNotFoundError:
        return "0.0.0"


def create_app(settings: SidecarSettings, kube: KubeApi | None = None) -> FastAPI:
    """The sidecar app. `kube`: a ready client (not closed by the app), or None to connect
    at startup with `KubeClient.from_kubeconfig`."""
    keys = KeyStore(
        single_key=settings.api_key.get_secret_value() if settings.api_key else None,
        keys_file=settings.api_keys_file,
    )
    if not keys.loaded:
        logger.warning("No API key loaded yet: every report will get 401 until one is")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned: KubeClient | None = None
        if app.state.sidecar is None:
            owned = KubeClient.from_kubeconfig(
                _kubeconfig_path(settings),
                qps=settings.kube_qps,
                burst=settings.kube_burst,
                user_agent="opscore-sidecar",
            )
            app.state.sidecar = Sidecar.build(settings, keys, owned)
        app.state.report_spans = ReportSpans.configured()  # off without an OTLP endpoint
        # Everything built so far (FastAPI, pydantic and their schemas: ~90k objects) lives
        # as long as the process: out of the collector's sight, a full collection costs
        # well under a millisecond instead of ~25 ms paid by every request in flight.
        gc.freeze()
        logger.info(
            "Sidecar ready to serve",
            extra={"namespace": settings.namespace, "webhook": settings.webhook_secret is not None},
        )
        try:
            yield
        finally:
            running: Sidecar = app.state.sidecar
            await running.writer.aclose()
            await app.state.report_spans.stop()
            if owned is not None:
                await owned.aclose()

    app = FastAPI(
        title="Ops-Core sidecar",
        version=_version(),
        summary="Agents' state reports and AgentKit's registration webhook, into Agent objects.",
        lifespan=lifespan,
    )
    app.state.keys = keys
    app.state.report_spans = ReportSpans()
    app.state.sidecar = Sidecar.build(settings, keys, kube) if kube is not None else None
    app.include_router(report_endpoint.router)
    app.include_router(webhook.router)
    app.include_router(workflow_start.router)
    app.include_router(trigger_endpoint.router)
    app.include_router(health.router)
    app.include_router(dashboard.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(ResponseMetricsMiddleware)  # outside the limit: counts its 413s too
    app.add_middleware(RequestIdMiddleware)  # outermost: every answer carries a request id
    app.add_exception_handler(Unavailable, _unavailable)
    app.add_exception_handler(CreateContended, _contended)
    app.add_exception_handler(KubeApiError, _kube_error)
    app.openapi = lambda: openapi.document(app)  # type: ignore[method-assign]
    return app


def _kubeconfig_path(settings: SidecarSettings) -> str | None:
    """A single kubeconfig file; a `:`-separated KUBECONFIG list is left to the kubernetes
    library, which merges it from the environment itself."""
    if settings.kubeconfig and os.pathsep not in settings.kubeconfig:
        return settings.kubeconfig
    return None


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    """503 + Retry-After: nothing was stored, and the SDK (which never retries) or a
    proxy in front of it learns that trying again shortly is the right move."""
    logger.warning("Kubernetes API unavailable: %s", exc)
    return _retry_later()


async def _contended(request: Request, exc: Exception) -> JSONResponse:
    """A create that kept conflicting is answered like an unreachable API server: nothing
    was stored, and a retry shortly finds the Agent the other creator made."""
    logger.warning("Agent creation kept conflicting: %s", exc)
    return _retry_later()


def _retry_later() -> JSONResponse:
    return JSONResponse(
        {"detail": "Kubernetes API server unavailable; nothing was stored, retry later"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


async def _kube_error(request: Request, exc: Exception) -> JSONResponse:
    """502: the API server refused the write (e.g. RBAC); its message goes to our log only."""
    assert isinstance(exc, KubeApiError)
    logger.error("Kubernetes API error: %s", exc)
    return JSONResponse(
        {"detail": f"Kubernetes API server refused the request ({exc.status} {exc.reason})"},
        status_code=502,
    )
