"""AgentKit's registration webhook: `POST /v1/opscore/internal/agent/notify`.

AgentKit signs each call: `X-AgentKit-Timestamp` (Unix seconds) and `X-AgentKit-Signature`,
the hex HMAC-SHA256 of `<timestamp>.<raw body bytes>` keyed with the shared secret. The
signature is checked over the raw bytes *before* the body is parsed (re-serialised JSON
would not match, and an unsigned caller learns nothing from validation errors), in
constant time, and only within a replay window of 300 s either way. A request that fails
the check changes nothing. A replay inside the window re-applies the same spec: harmless.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from opscore_kube import AGENTS, KubeApiError, NotFound, Unavailable
from opscore_logic.names import AGENT_KEY_LABEL, agent_key
from opscore_logic.registration import agent_id_of
from opscore_sidecar.agent_directory import CreateContended, name_of
from opscore_sidecar.components import Sidecar, get_sidecar
from opscore_sidecar.metrics import WEBHOOKS
from opscore_sidecar.responses import BAD_GATEWAY, TOO_LARGE, UNAVAILABLE
from opscore_sidecar.schemas import AgentDetails, ErrorBody, RegistrationEvent, WebhookAccepted

logger = logging.getLogger("opscore.sidecar.webhook")
router = APIRouter(tags=["AgentKit webhook"])

REPLAY_WINDOW_SECONDS = 300
NOTIFY_PATH = "/v1/opscore/internal/agent/notify"
_EPOCH_SECONDS = re.compile(r"\d{1,12}")


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """AgentKit's signature for a body sent at `timestamp`."""
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_problem(
    *,
    secret: bytes,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    window: float = REPLAY_WINDOW_SECONDS,
) -> str | None:
    """Why the signature is not acceptable, or None when it is."""
    if not timestamp or not signature:
        return "missing X-AgentKit-Timestamp or X-AgentKit-Signature header"
    if not _EPOCH_SECONDS.fullmatch(timestamp):
        return "X-AgentKit-Timestamp is not Unix epoch seconds"
    if abs(now - int(timestamp)) > window:
        return f"X-AgentKit-Timestamp is outside the {window:g}s replay window"
    expected = sign(secret, timestamp, body).encode()
    presented = signature.strip().lower().encode("latin-1", "replace")
    if not hmac.compare_digest(expected, presented):
        return "X-AgentKit-Signature does not match"
    return None


def spec_from(details: AgentDetails) -> dict[str, Any]:
    """The Agent spec fields a registration sets (others, e.g. `paused`, are left alone)."""
    spec: dict[str, Any] = {
        "agentId": details.agentId,
        "agentName": details.agentName,
        "version": details.version,
        "capabilities": list(details.capabilities),
        "contactEndpoint": details.contactEndpoint,
    }
    description = details.description()
    if description is not None:
        spec["description"] = description
    return spec


_SCHEMA_REF = {"$ref": "#/components/schemas/RegistrationEvent"}


@router.post(
    NOTIFY_PATH,
    response_model=WebhookAccepted,
    summary="AgentKit registration webhook",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _SCHEMA_REF}}}
    },
    responses={
        401: {
            "model": ErrorBody,
            "description": "Missing, wrong or stale signature.",
            "headers": {
                "WWW-Authenticate": {
                    "description": '`HMAC-SHA256 realm="agentkit-webhook"`.',
                    "schema": {"type": "string"},
                }
            },
        },
        **TOO_LARGE,
        422: {"description": "Invalid body or unknown event_type."},
        **BAD_GATEWAY,
        503: {
            "model": ErrorBody,
            "description": (
                "No OPSCORE_WEBHOOK_SECRET configured, or the API server is down (then "
                "with Retry-After)."
            ),
            "headers": UNAVAILABLE[503]["headers"],
        },
    },
)
async def notify(
    request: Request,
    sidecar: Annotated[Sidecar, Depends(get_sidecar)],
    x_agentkit_timestamp: Annotated[
        str | None,
        Header(alias="X-AgentKit-Timestamp", description="Unix epoch seconds, decimal."),
    ] = None,
    x_agentkit_signature: Annotated[
        str | None,
        Header(
            alias="X-AgentKit-Signature",
            description="Hex HMAC-SHA256 of `<timestamp>.<raw body>` with the shared secret.",
        ),
    ] = None,
) -> WebhookAccepted:
    """Record a registration in the Agent's spec (creating the Agent when it is new).

    Sets agentId, agentName, version, capabilities, contactEndpoint and description (from
    metadata.description) with a merge patch of the spec; status is never touched.
    """
    secret = sidecar.settings.webhook_secret
    if secret is None:
        WEBHOOKS.labels("disabled").inc()
        raise HTTPException(
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            detail="Registration webhook disabled: OPSCORE_WEBHOOK_SECRET is not set",
        )
    body = await request.body()
    problem = signature_problem(
        secret=secret.get_secret_value().encode(),
        timestamp=x_agentkit_timestamp,
        signature=x_agentkit_signature,
        body=body,
        now=time.time(),
    )
    if problem is not None:
        WEBHOOKS.labels("unauthorized").inc()
        logger.warning("Webhook rejected: %s", problem)
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail=f"Invalid webhook signature: {problem}",
            headers={"WWW-Authenticate": 'HMAC-SHA256 realm="agentkit-webhook"'},
        )
    try:
        event = RegistrationEvent.model_validate_json(body)
    except ValidationError as exc:
        WEBHOOKS.labels("invalid").inc()
        errors = exc.errors(include_url=False, include_context=False)
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]
        ) from None
    details = event.agent_details
    try:
        name = await _register(sidecar, spec_from(details))
    except (Unavailable, CreateContended):
        WEBHOOKS.labels("unavailable").inc()
        raise
    except KubeApiError:
        WEBHOOKS.labels("error").inc()
        raise
    WEBHOOKS.labels("registered").inc()
    logger.info(
        "Agent registered",
        extra={"agent_id": details.agentId, "agent": name, "agent_name": details.agentName},
    )
    return WebhookAccepted(
        message=f"Agent {details.agentName!r} ({details.agentId}) registered as "
        f"{sidecar.settings.namespace}/{name}"
    )


async def _register(sidecar: Sidecar, spec: dict[str, Any]) -> str:
    """Create the Agent with `spec`, or merge `spec` into the existing one; its name.

    An existing Agent found by `agentName` under another id is the same agent, registered
    again after AgentKit forgot it: it takes the new id (and its agent-key label), and keeps
    the old one in `spec.previousAgentId` so reports still sent under it land here. Its
    status (counters, reports) is untouched, and the new generation clears the operator's
    `NotRegisteredInAgentKit` mark."""
    agent_id = str(spec["agentId"])
    for attempt in (1, 2):
        obj, created = await sidecar.directory.register(spec)
        name = name_of(obj)
        if created:
            sidecar.writer.relocate(agent_id, name)
            return name
        patch: dict[str, Any] = {"spec": spec}
        old_id = agent_id_of(obj)
        if old_id != agent_id:
            patch = {
                "metadata": {"labels": {AGENT_KEY_LABEL: agent_key(agent_id)}},
                "spec": {**spec, "previousAgentId": old_id},
            }
            logger.info(
                "Agent registered again under a new id",
                extra={"agent": name, "agent_id": agent_id, "previous_agent_id": old_id},
            )
        try:
            await sidecar.kube.patch(AGENTS, sidecar.settings.namespace, name, patch)
        except NotFound:
            sidecar.directory.forget(agent_id)
            if attempt == 2:
                raise
            continue
        sidecar.directory.remember(agent_id, name)
        sidecar.writer.relocate(agent_id, name)
        return name
    raise AssertionError("unreachable")
