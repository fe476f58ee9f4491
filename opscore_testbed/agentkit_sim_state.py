"""The AgentKit simulator's AgentKit half: AgentKit's wire models, its in-memory agent
registry (forgotten on restart, as AgentKit's is), the signed registration webhook it
sends, and the outages tests switch on (`opscore_testbed.agentkit_sim` serves them)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
from fastapi import HTTPException, status
from pydantic import BaseModel, ConfigDict, Field, HttpUrl
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

logger = logging.getLogger("opscore_testbed.agentkit_sim")

#: AgentKit's timeout for the registration webhook (contract section 3).
WEBHOOK_TIMEOUT_SECONDS = 10.0


# --- AgentKit's own models (field names are the wire contract) ---------------------------------


class ApiResponse(BaseModel):
    """AgentKit's response envelope."""

    status: str
    message: str | None = None
    data: Any = None
    error_code: str | None = None


class AgentMetadata(BaseModel):
    description: str | None = None
    config: dict[str, Any] | None = None


class AgentRegistrationPayload(BaseModel):
    agentName: str
    capabilities: list[str] = Field(default_factory=list)
    version: str
    contactEndpoint: HttpUrl
    metadata: AgentMetadata | None = None


class AgentInfo(BaseModel):
    """What AgentKit stores about a registered agent."""

    agentId: str = Field(default_factory=lambda: str(uuid.uuid4()))
    agentName: str
    capabilities: list[str]
    version: str
    contactEndpoint: str
    metadata: AgentMetadata | None = None
    registration_time: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def details(self) -> dict[str, Any]:
        """The webhook's `agent_details` (and the optional list's items)."""
        return {
            "agentId": self.agentId,
            "agentName": self.agentName,
            "version": self.version,
            "capabilities": self.capabilities,
            "contactEndpoint": self.contactEndpoint,
            "metadata": self.metadata.model_dump() if self.metadata else {},
            "registration_time": self.registration_time.isoformat(timespec="microseconds").replace(
                "+00:00", "Z"
            ),
        }


class SessionContext(BaseModel):
    """AgentKit keeps only these two keys of `sessionContext`."""

    sessionId: str | None = None
    priorMessages: list[str] | None = Field(default_factory=list)


class MessagePayload(BaseModel):
    """The `/run` body; unknown top-level keys are dropped (pydantic's default), like AgentKit."""

    senderId: str
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))
    messageType: str
    payload: dict[str, Any]
    sessionContext: SessionContext | None = None
    task_name: str | None = None
    opscore_session_id: str | None = None
    opscore_task_id: str | None = None


# --- AgentKit's storage, webhook and outages ----------------------------------------------------


class DuplicateAgentNameError(ValueError):
    """AgentKit refuses a second agent with the same name (answered as 409)."""


class AgentRegistry:
    """AgentKit's in-memory storage: exactly what a restart of AgentKit forgets."""

    def __init__(self) -> None:
        self._by_id: dict[str, AgentInfo] = {}
        self._id_by_name: dict[str, str] = {}

    def register(self, payload: AgentRegistrationPayload) -> AgentInfo:
        if payload.agentName in self._id_by_name:
            raise DuplicateAgentNameError(
                f"Agent with name '{payload.agentName}' already registered."
            )
        info = AgentInfo(
            agentName=payload.agentName,
            capabilities=payload.capabilities,
            version=payload.version,
            contactEndpoint=str(payload.contactEndpoint),
            metadata=payload.metadata,
        )
        self._by_id[info.agentId] = info
        self._id_by_name[info.agentName] = info.agentId
        return info

    def get(self, agent_id: str) -> AgentInfo | None:
        return self._by_id.get(agent_id)

    def all(self) -> list[AgentInfo]:
        return list(self._by_id.values())

    def forget_all(self) -> int:
        """Drop every agent, like a restart; returns how many were forgotten."""
        count = len(self._by_id)
        self._by_id.clear()
        self._id_by_name.clear()
        return count


def sign_webhook(*, secret: str, timestamp: str, body: bytes) -> str:
    """AgentKit's signature: hex HMAC-SHA256 over `<timestamp>.` + the raw body bytes."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookNotifier:
    """Tells Ops-Core about a registration: one signed POST, one try, failures only logged."""

    def __init__(self, *, client: httpx.AsyncClient, url: str | None, secret: str | None) -> None:
        self._client = client
        self._url = url
        self._secret = secret

    async def notify(self, info: AgentInfo) -> None:
        if not self._url or not self._secret:
            return
        body = json.dumps(
            {"event_type": "REGISTER", "agent_details": info.details()}, separators=(",", ":")
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-AgentKit-Timestamp": timestamp,
            "X-AgentKit-Signature": sign_webhook(
                secret=self._secret, timestamp=timestamp, body=body
            ),
        }
        extra = {"agentId": info.agentId, "agentName": info.agentName}
        try:
            response = await self._client.post(
                self._url, content=body, headers=headers, timeout=WEBHOOK_TIMEOUT_SECONDS
            )
        except httpx.HTTPError as exc:
            logger.error("Registration webhook failed: %r", exc, extra=extra)
            return
        if response.is_success:
            logger.info("Registration webhook delivered", extra=extra)
        else:
            logger.error("Registration webhook answered HTTP %d", response.status_code, extra=extra)


class OutageRequest(BaseModel):
    """Body of `POST /sim/outage`; `seconds: 0` ends an outage early."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(ge=0.0)
    mode: Literal["503", "slow"] = "503"
    delay_seconds: float = Field(default=5.0, ge=0.0)


class DispatchFaults(BaseModel):
    """Body of `POST /sim/dispatch-faults`: a share of `/run` calls is *scheduled* (the
    agent will get the task) and then answered only after `stall_seconds`, past the
    caller's timeout, or has its connection cut before the answer is complete: either
    way the caller sees a failure for a dispatch that took effect."""

    model_config = ConfigDict(extra="forbid")

    stall_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    stall_seconds: float = Field(default=0.0, ge=0.0)
    reset_rate: float = Field(default=0.0, ge=0.0, le=1.0)


class DispatchStalls:
    """The `DispatchFaults` in force, and the task ids of the dispatches stalled or cut
    off so far (each one a dispatch the caller may send again: a predicted duplicate)."""

    def __init__(self, seed: int | None) -> None:
        self.faults = DispatchFaults()
        self.stalled: list[str] = []
        self.reset: list[str] = []
        self._rng = random.Random(seed)

    async def after_scheduled(self, task_id: str | None) -> bool:
        """Called once the dispatch is scheduled: sometimes answer late; True when this
        answer is to be cut off instead (the caller sees its connection drop)."""
        roll = self._rng.random()
        if roll < self.faults.reset_rate:
            self.reset.append(str(task_id))
            logger.warning(
                "Cutting off a scheduled dispatch's answer on purpose", extra={"task": task_id}
            )
            return True
        if roll < self.faults.reset_rate + self.faults.stall_rate:
            self.stalled.append(str(task_id))
            logger.warning("Stalling a scheduled dispatch on purpose", extra={"task": task_id})
            await asyncio.sleep(self.faults.stall_seconds)
        return False


class DeliberateCutOff(ConnectionResetError):
    """Raised by `CutOffAnswer` once its headers are out: uvicorn then closes the
    connection, and the caller sees it drop mid-answer."""


class CutOffAnswer(Response):
    """A 202 whose body never comes: the headers promise bytes, then the connection is
    closed, as when a network path breaks after the server acted. (An ASGI app has no
    handle on the socket; uvicorn closes the transport when the app fails after starting
    its answer.)"""

    def __init__(self) -> None:
        super().__init__(status_code=202)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"64")]
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        raise DeliberateCutOff("answer cut off on purpose (dispatch faults)")


class QuietCutOffs(logging.Filter):
    """Keeps uvicorn's "Exception in ASGI application" traceback for a `CutOffAnswer` out
    of the log (the simulator has said what it did at WARNING already)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DeliberateCutOff))


class Outage:
    """A time window in which AgentKit's `/v1` API answers 503 or answers late."""

    def __init__(self) -> None:
        self.until = 0.0
        self.mode: Literal["503", "slow"] = "503"
        self.delay_seconds = 0.0

    def start(self, request: OutageRequest) -> None:
        self.until = time.monotonic() + request.seconds
        self.mode = request.mode
        self.delay_seconds = request.delay_seconds

    async def gate(self) -> None:
        """FastAPI dependency of every `/v1` route: cheap when there is no outage."""
        if time.monotonic() >= self.until:
            return
        if self.mode == "503":
            raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "AgentKit is unavailable.")
        await asyncio.sleep(self.delay_seconds)
