"""The agents' state endpoint: `POST/GET /v1/opscore/agent/{agentId}/state`.

The path sits at the root of the host: the AgentKit SDK joins this absolute path onto
`OPSCORE_API_URL`, dropping any prefix, so no other mount point would ever be reached.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from fastapi.exceptions import RequestValidationError

import opscore_faultpoints as faultpoints
from opscore_kube import KubeApiError, Unavailable
from opscore_logic.agent_model import AgentReport
from opscore_logic.lifecycle import latest_report, normalise_state
from opscore_sidecar.agent_directory import CreateContended
from opscore_sidecar.auth import Principal
from opscore_sidecar.components import Sidecar, get_sidecar
from opscore_sidecar.metrics import REPORTS
from opscore_sidecar.quota import require_agent_quota
from opscore_sidecar.reports import stored_reports
from opscore_sidecar.responses import AGENT_ROUTE
from opscore_sidecar.schemas import Accepted, AgentStateView, ErrorBody, StateReport
from opscore_sidecar.tracing import ReportSpans

router = APIRouter(tags=["agent state"])

AgentIdPath = Annotated[str, Path(description="The agent's AgentKit id.", max_length=253)]


@router.post(
    "/v1/opscore/agent/{agentId}/state",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    summary="Report an agent's state",
    responses={
        **AGENT_ROUTE,
        400: {
            "model": ErrorBody,
            "description": (
                "agentId in the body differs from the path, or the body is not UTF-8 "
                "(then answered before the key is checked)."
            ),
        },
        422: {
            "description": (
                "Invalid body, or a timestamp further in the future than "
                "OPSCORE_MAX_CLOCK_SKEW_SECONDS."
            )
        },
    },
)
async def post_state(
    request: Request,
    agentId: AgentIdPath,
    report: StateReport,
    principal: Annotated[Principal, Depends(require_agent_quota)],
    sidecar: Annotated[Sidecar, Depends(get_sidecar)],
) -> Accepted:
    """Store the report in the Agent's `status.reports`; answer 202 only once it is there.

    The first report from an unknown agent creates its Agent (agents report before
    AgentKit's registration webhook arrives). An exact duplicate is accepted and stored once.

    Timestamps: more than OPSCORE_MAX_CLOCK_SKEW_SECONDS (300) in the future is 422 (it
    would stay the agent's "newest" report until real time caught up). Any past time is
    accepted: it only orders this agent's reports, and liveness is measured from when the
    sidecar received the report, so a slow clock can neither keep an agent alive nor
    expire it. Over a rate limit: 429 with Retry-After, and nothing is stored.
    """
    received = datetime.now(UTC)
    state_label = normalise_state(report.state).value
    if report.agentId != agentId:
        REPORTS.labels(state_label, "invalid").inc()
        raise HTTPException(
            status_code=status.HTTP_400_BAD_REQUEST,
            detail=f"agentId in body ({report.agentId!r}) does not match path ({agentId!r})",
        )
    skew = sidecar.settings.max_clock_skew_seconds
    if report.timestamp > received + timedelta(seconds=skew):
        REPORTS.labels(state_label, "invalid").inc()
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "timestamp"),
                    "msg": (
                        f"timestamp is more than {skew:g}s in the future "
                        f"(server time {received.isoformat()})"
                    ),
                    "input": report.timestamp.isoformat(),
                }
            ]
        )
    stored = AgentReport(
        state=report.state,
        timestamp=report.timestamp,
        received_at=received,
        details=report.details,
    )
    try:
        fresh = await sidecar.writer.submit(agentId, stored)
    except (Unavailable, CreateContended):
        REPORTS.labels(state_label, "unavailable").inc()
        raise
    except KubeApiError:
        REPORTS.labels(state_label, "error").inc()
        raise
    REPORTS.labels(state_label, "stored" if fresh else "duplicate").inc()
    spans: ReportSpans = request.app.state.report_spans
    spans.stored(agentId, stored, fresh=fresh, done=datetime.now(UTC))
    try:
        faultpoints.hit("sidecar.report.after_write")
    except faultpoints.FaultInjected as exc:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc)) from exc
    return Accepted()


@router.get(
    "/v1/opscore/agent/{agentId}/state",
    response_model=AgentStateView,
    summary="The agent's latest reported state",
    responses={
        **AGENT_ROUTE,
        404: {"model": ErrorBody, "description": "No Agent, or it has not reported yet."},
    },
)
async def get_state(
    agentId: AgentIdPath,
    principal: Annotated[Principal, Depends(require_agent_quota)],
    sidecar: Annotated[Sidecar, Depends(get_sidecar)],
) -> AgentStateView:
    """The newest report by the agent's own timestamp (what the earlier Ops-Core returned)."""
    reports = sidecar.writer.known_reports(agentId)
    if reports is None:
        obj = await sidecar.directory.find(agentId)
        if obj is None:
            raise HTTPException(
                status_code=status.HTTP_404_NOT_FOUND,
                detail=f"No Agent found for agentId {agentId!r}",
            )
        reports = stored_reports(obj)
    latest = latest_report(reports)
    if latest is None:
        raise HTTPException(
            status_code=status.HTTP_404_NOT_FOUND,
            detail=f"Agent {agentId!r} has not reported a state yet",
        )
    return AgentStateView(
        agentId=agentId, state=latest.state, details=latest.details, timestamp=latest.timestamp
    )
