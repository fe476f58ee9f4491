"""What the AgentKit simulator's unit tests share: a stand-in Ops-Core that records what
arrives, a handle on a running simulator, and deadline-bound waiting."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Request
from starlette.datastructures import Headers

from opscore_testbed.agentkit_sim import (
    RunningSimulator,
    SimSettings,
)

API_KEY = "test-api-key"
SECRET = "webhook-secret"
SDK_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")
MESSAGE_KEYS = {
    "senderId",
    "timestamp",
    "messageType",
    "payload",
    "sessionContext",
    "task_name",
    "opscore_session_id",
    "opscore_task_id",
}


async def wait_for(condition: Callable[[], Any], *, within: float = 5.0, what: str = "") -> Any:
    """Poll `condition` (sync or async) until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await asyncio.sleep(0.01)


@dataclass
class Received:
    kind: str  # "report" | "webhook" | "message"
    path: str
    headers: Headers
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


@dataclass
class OpsCoreRecorder:
    """A stand-in Ops-Core (and one external agent endpoint) that records what arrives, in order."""

    url: str = ""
    received: list[Received] = field(default_factory=list)

    def build_app(self) -> FastAPI:
        app = FastAPI()

        async def record(kind: str, request: Request) -> None:
            raw = await request.body()
            self.received.append(Received(kind, request.url.path, request.headers, raw))

        @app.post("/v1/opscore/agent/{agent_id}/state", status_code=202)
        async def state(agent_id: str, request: Request) -> dict[str, str]:
            await record("report", request)
            return {"status": "success", "message": "State update accepted"}

        @app.post("/v1/opscore/internal/agent/notify")
        async def notify(request: Request) -> dict[str, str]:
            await record("webhook", request)
            return {"status": "success"}

        @app.post("/agent")
        async def agent(request: Request) -> dict[str, str]:
            await record("message", request)
            return {"status": "received"}

        return app

    def of(self, kind: str) -> list[Received]:
        return [item for item in self.received if item.kind == kind]

    def reports(self, agent_id: str) -> list[Received]:
        return [item for item in self.of("report") if item.body["agentId"] == agent_id]

    def states(self, agent_id: str) -> list[str]:
        return [item.body["state"] for item in self.reports(agent_id)]


@dataclass
class Sim:
    running: RunningSimulator
    client: httpx.AsyncClient

    async def add_agent(self, **spec: Any) -> dict[str, Any]:
        response = await self.client.post("/sim/agents", json=spec)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def agent(self, name: str) -> dict[str, Any]:
        return dict((await self.client.get(f"/sim/agents/{name}")).json())

    async def run(self, agent_id: str, **fields: Any) -> httpx.Response:
        message = {"senderId": "opscore", "messageType": "workflow_task", "payload": {}} | fields
        return await self.client.post(f"/v1/agents/{agent_id}/run", json=message)


def sim_settings(opscore: OpsCoreRecorder, **overrides: Any) -> SimSettings:
    defaults: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        # A path prefix the SDK would drop: reports must still land at the host's root.
        "opscore_url": f"{opscore.url}/ignored/prefix",
        "api_key": API_KEY,
        "webhook_url": f"{opscore.url}/v1/opscore/internal/agent/notify",
        "webhook_secret": SECRET,
        "seed": 7,
    }
    return SimSettings(**(defaults | overrides))


def registration(
    name: str = "summarizer", endpoint: str = "http://127.0.0.1:9/task"
) -> dict[str, Any]:
    return {
        "agentName": name,
        "version": "1.0.0",
        "contactEndpoint": endpoint,
        "capabilities": ["summarize"],
        "metadata": {"description": "test agent", "config": {"k": "v"}},
    }


async def completed(sim: Sim, name: str, count: int) -> bool:
    """Whether the simulated agent `name` has finished at least `count` tasks."""
    return bool((await sim.agent(name))["tasks_completed"] >= count)
