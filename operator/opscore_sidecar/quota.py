"""The agent API's admission dependency: authenticated, scoped, and within the rate limits.

Every route under `/v1/opscore/agent/{agentId}/...` depends on `require_agent_quota`, so
the order is fixed for all of them: 401 (no or unknown key), 403 (key scoped to other
agents), 429 (over a rate limit, see `ratelimit.py`). Requests refused by the first two
take no tokens: a stranger cannot spend an agent's budget.
"""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi import Path as PathParam

from opscore_sidecar.auth import Principal, require_agent_access
from opscore_sidecar.components import Sidecar, get_sidecar
from opscore_sidecar.metrics import RATE_LIMITED


def retry_after(seconds: float) -> str:
    """`Retry-After` is whole seconds: round up, and never say 0 (that invites a spin)."""
    return str(max(1, math.ceil(seconds)))


async def require_agent_quota(
    agentId: Annotated[str, PathParam(description="The agent's AgentKit id.")],
    principal: Annotated[Principal, Depends(require_agent_access)],
    sidecar: Annotated[Sidecar, Depends(get_sidecar)],
) -> Principal:
    """FastAPI dependency: 401 / 403 as `require_agent_access`, then 429 with
    `Retry-After` when the key's or the agent's bucket is empty (nothing is stored then).

    `async` although it never awaits: FastAPI runs plain `def` dependencies in a thread
    pool, and the token buckets are not thread-safe.
    """
    refused = sidecar.limits.admit(principal.key_id, agentId)
    if refused is None:
        return principal
    limit, wait = refused
    RATE_LIMITED.labels(limit).inc()
    who = f"agent {agentId!r}" if limit == "agent" else "this API key"
    raise HTTPException(
        status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        detail=f"Rate limit for {who} exceeded; nothing was stored, retry after Retry-After",
        headers={"Retry-After": retry_after(wait)},
    )
