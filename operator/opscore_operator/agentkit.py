"""The one client Ops-Core uses to send tasks to agents through AgentKit.

AgentKit answers 202 once a task is *scheduled*; it then forwards the message to the
agent in the background and never reports the outcome (that comes from the agent's state
reports). 404 means AgentKit does not know the agent (it keeps agents in memory, so a
restart forgets them all). Connection errors, timeouts, 429 and 5xx are retried here with
backoff, within a bounded number of tries, all with the same body (so the same
`opscore_task_id`); the caller decides what a final failure means (the workflow engine
puts the step back in the queue without spending a retry, and the Workflow's
`AgentKitReachable` condition says why).

A retried request after a timeout is the one case that can deliver a task twice: AgentKit
has no idempotency key, and a timeout does not say whether the first request was
scheduled. Agents that report `opscore_task_id` make such a duplicate harmless (its report
matches the attempt exactly); for reference agents it is a known limit (docs/agents.md).

A final failure says whether AgentKit **may have taken** the task (`maybe_delivered`): a
request that went out and then timed out or lost its connection (a silent server, a reset,
the server closing mid-answer: the exchange's `Lost`) may have been scheduled; one that
never connected (`NotSent`), or that AgentKit answered with an error, was not. The
engine sends a task that may have been taken again under the *same* task id (at least
once, the duplicate visible by `opscore_task_id`), and one that surely was not under a new
attempt. A connection that broke while the request was being written counts as `Lost`
too: the exchange cannot tell how much of it left, so the task is resent under its id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from prometheus_client import Counter, Histogram

import opscore_faultpoints as faultpoints
from opscore_kube.exchange import (
    AiohttpExchange,
    Answer,
    AnswerTimedOut,
    ConnectTimedOut,
    DeliveryError,
    Exchange,
    Lost,
)
from opscore_logic.engine import Dispatch, WorkflowRef

logger = logging.getLogger("opscore.agentkit")

DISPATCHES = Counter(
    "opscore_dispatches_total", "Task dispatches to AgentKit, by result.", ["result"]
)
DISPATCH_LATENCY = Histogram(
    "opscore_dispatch_seconds",
    "Time for AgentKit to accept a dispatch (including retries).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

DispatchOutcome = Literal["scheduled", "not_found", "rejected", "unreachable"]


@dataclass(frozen=True, slots=True)
class DispatchResult:
    outcome: DispatchOutcome
    detail: str = ""
    reason: str = ""  # for "unreachable": Unreachable, Timeout or ServerError
    #: for a failure: a try was sent whole and its answer lost, so AgentKit may have
    #: scheduled the task (see module docstring)
    maybe_delivered: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome == "scheduled"


SENDER_ID = "opscore"
# What each dispatch says about itself (an aiohttp exchange adds no headers of its own).
_POST_HEADERS = {"Content-Type": "application/json", "User-Agent": "opscore-operator"}
_GET_HEADERS = {"Accept": "application/json", "User-Agent": "opscore-operator"}


def task_message(
    dispatch: Dispatch, workflow: WorkflowRef, *, traceparent: str | None = None
) -> dict[str, Any]:
    """The AgentKit `/run` body for a dispatch. Correlation ids go in the three optional
    top-level strings AgentKit keeps (`task_name`, `opscore_session_id`,
    `opscore_task_id`); any other top-level key would be dropped by AgentKit. The W3C
    trace context (only when tracing is on) goes in `payload.traceparent`, which AgentKit
    forwards as it is: an agent continues the trace from its attempt's span."""
    message: dict[str, Any] = {
        "senderId": SENDER_ID,
        "messageType": "workflow_task",
        "payload": {
            "task": dispatch.task_name,
            "parameters": dispatch.parameters,
            "workflow": f"{workflow.namespace}/{workflow.name}",
            "step": dispatch.step,
            "attempt": dispatch.attempt,
        },
        "timestamp": datetime.now(UTC).isoformat(),
        "sessionContext": {"sessionId": workflow.uid},
        "task_name": dispatch.task_name,
        "opscore_session_id": workflow.uid,
        "opscore_task_id": dispatch.task_id,
    }
    if traceparent is not None:
        message["payload"]["traceparent"] = traceparent
    return message


class AgentKitClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        attempts: int = 4,
        backoff: float = 0.2,
        exchange: Exchange | None = None,
    ) -> None:
        self._attempts = attempts
        self._backoff = backoff
        self._server = urlsplit(base_url).hostname or ""
        # aiohttp's pool, request and answer, as for the Kubernetes client: httpcore's pool
        # cost ~3.6 ms of CPU per dispatch in B1, and httpx's models on top of aiohttp's
        # pool ~0.4 ms more (bench/results/latest-profile.md). Idle connections are let go
        # after 4 s, before AgentKit's uvicorn (5 s by default) may close them under us.
        self._exchange = exchange or AiohttpExchange(
            base_url,
            max_connections=100,
            keepalive_timeout=4.0,
            timeout=timeout,
            connect_timeout=min(timeout, 3.0),
        )

    async def aclose(self) -> None:
        await self._exchange.aclose()

    @property
    def server(self) -> str:
        """AgentKit's host, as the dispatch spans name it (`server.address`)."""
        return self._server

    async def run(self, agent_id: str, message: dict[str, Any]) -> DispatchResult:
        """POST the task to `/v1/agents/{agent_id}/run`; never raises for HTTP trouble."""
        started = time.perf_counter()
        result = await self._run(agent_id, message)
        DISPATCH_LATENCY.observe(time.perf_counter() - started)
        DISPATCHES.labels(result.outcome).inc()
        return result

    async def _run(self, agent_id: str, message: dict[str, Any]) -> DispatchResult:
        path = f"/v1/agents/{quote(agent_id, safe='')}/run"
        body = json.dumps(message, separators=(",", ":")).encode()
        detail = reason = ""
        maybe_delivered = False  # sticky: a later clear refusal does not undo an earlier send
        for attempt in range(1, self._attempts + 1):
            try:
                if attempt == 1:
                    faultpoints.hit("operator.dispatch.before_post")
                resp = await self._exchange.send("POST", path, headers=_POST_HEADERS, body=body)
            except faultpoints.FaultInjected as exc:
                return DispatchResult("unreachable", str(exc), "Unreachable", maybe_delivered)
            except (ConnectTimedOut, AnswerTimedOut) as exc:
                reason = "Timeout"
                detail = f"AgentKit did not answer in time: {type(exc).__name__}: {exc}"
                maybe_delivered = maybe_delivered or isinstance(exc, Lost)
            except DeliveryError as exc:
                reason = "Unreachable"
                detail = f"AgentKit unreachable: {type(exc).__name__}: {exc}"
                maybe_delivered = maybe_delivered or isinstance(exc, Lost)
            else:
                if resp.status in (200, 201, 202):
                    try:
                        faultpoints.hit("operator.dispatch.after_accepted")
                    except faultpoints.FaultInjected as exc:
                        # AgentKit did take it: the test bed's stand-in for a lost answer.
                        return DispatchResult("unreachable", str(exc), "Unreachable", True)
                    return DispatchResult("scheduled")
                if resp.status == 404:
                    return DispatchResult("not_found", _detail(resp))
                if resp.status < 500 and resp.status != 429:
                    return DispatchResult("rejected", f"{resp.status}: {_detail(resp)}")
                reason = "ServerError"
                detail = f"AgentKit answered {resp.status}: {_detail(resp)}"
            if attempt < self._attempts:
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
        detail = detail.rstrip(": ")
        logger.warning("dispatch failed after %d tries: %s", self._attempts, detail)
        return DispatchResult("unreachable", detail, reason, maybe_delivered)

    async def list_agents(self) -> AgentList:
        """`GET /v1/agents`: what AgentKit has registered, if it has that endpoint.

        The real AgentKit answers 404 (it has no list endpoint); that is `absent`, not an
        error. Never raises for HTTP trouble."""
        try:
            resp = await self._exchange.send("GET", "/v1/agents", headers=_GET_HEADERS)
        except DeliveryError as exc:
            return AgentList("error", detail=f"{type(exc).__name__}: {exc}")
        if resp.status in (404, 405):
            return AgentList("absent")
        if resp.status != 200:
            return AgentList("error", detail=f"{resp.status}: {_detail(resp)}")
        try:
            body = resp.json()
        except ValueError:
            return AgentList("error", detail="GET /v1/agents answered something not JSON")
        items = body.get("data") if isinstance(body, dict) else body
        if not isinstance(items, list):
            return AgentList("error", detail="GET /v1/agents answered no list of agents")
        return AgentList("ok", [item for item in items if isinstance(item, dict)])


@dataclass(frozen=True, slots=True)
class AgentList:
    """The answer to `GET /v1/agents`: ok (with the agents), absent (404) or error."""

    outcome: Literal["ok", "absent", "error"]
    agents: list[dict[str, Any]] = field(default_factory=list)
    detail: str = ""


def _detail(resp: Answer) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("message") or body)[:500]
    return str(body)[:500]
