"""The simulated agents a scenario runs with, and the simulator's control API.

Nine workers, each offering two of the three capabilities (so every capability and every
pair of them has three agents), two thirds of them reference agents (no task id in their
reports: completion is inferred) and one third correlated; plus the doomer, which fails
every task. All of it is driven through the simulator's `/sim/` endpoints.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from opscore_kube import AGENTS, KubeClient
from opscore_testbed.chaos.workload import CAPABILITIES, DOOMED

#: AgentKit's idea of a "task": how long a simulated agent works on one.
TASK_SECONDS = 0.3
DOOMER = "doomer"


@dataclass(frozen=True)
class SimAgent:
    """The body of `POST /sim/agents` (the simulator's AgentSpec)."""

    name: str
    capabilities: tuple[str, ...]
    mode: str = "reference"
    duration_seconds: float = TASK_SECONDS
    failure_rate: float = 0.0
    dispatch_delay_seconds: float = 0.0

    def spec(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "capabilities": list(self.capabilities),
            "mode": self.mode,
            "duration_seconds": self.duration_seconds,
            "failure_rate": self.failure_rate,
            "dispatch_delay_seconds": self.dispatch_delay_seconds,
        }


def workers(count: int = 9) -> list[SimAgent]:
    """Workers `w00`... offering capability pairs in rotation; every third trio correlated."""
    fleet = []
    for index in range(count):
        first = CAPABILITIES[index % 3]
        second = CAPABILITIES[(index + 1) % 3]
        mode = "correlated" if (index // 3) % 3 == 2 else "reference"
        fleet.append(SimAgent(f"w{index:02d}", (first, second), mode))
    return fleet


def standard_fleet(count: int = 9) -> list[SimAgent]:
    return [*workers(count), SimAgent(DOOMER, (DOOMED,), failure_rate=1.0)]


class Simulator:
    """The AgentKit simulator's `/sim/` API, as the scenarios use it."""

    def __init__(self, url: str) -> None:
        self._http = httpx.AsyncClient(base_url=url, timeout=30, trust_env=False)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = await self._http.request(method, path, json=body)
        response.raise_for_status()
        return response.json()

    async def add(self, agents: list[SimAgent]) -> None:
        for agent in agents:
            await self._call("POST", "/sim/agents", agent.spec())

    async def patch(self, name: str, **changes: Any) -> None:
        await self._call("PATCH", f"/sim/agents/{name}", changes)

    async def agents(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self._call("GET", "/sim/agents")
        return result

    async def tasks(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("GET", "/sim/tasks")
        return result

    async def outage(self, seconds: float, mode: str = "503", delay: float = 5.0) -> None:
        await self._call(
            "POST", "/sim/outage", {"seconds": seconds, "mode": mode, "delay_seconds": delay}
        )

    async def dispatch_faults(
        self, *, stall_rate: float, stall_seconds: float, reset_rate: float = 0.0
    ) -> None:
        body = {"stall_rate": stall_rate, "stall_seconds": stall_seconds, "reset_rate": reset_rate}
        await self._call("POST", "/sim/dispatch-faults", body)

    async def forget(self) -> int:
        answer: dict[str, int] = await self._call("POST", "/sim/forget")
        return answer["forgotten"]

    async def register_again(self, name: str) -> None:
        await self._call("POST", f"/sim/agents/{name}/register")


def _ready(agent: dict[str, Any]) -> bool:
    conditions = (agent.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def agents_ready(
    kube: KubeClient, namespace: str, sim: Simulator, *, within: float = 90.0
) -> dict[str, str]:
    """Wait until an Agent for every simulated agent's *current* id is Ready with its
    capabilities (the webhook has landed); simulated name -> Agent resource name."""
    deadline = time.monotonic() + within
    missing: set[str] = set()
    while True:
        wanted = {a["agentId"]: a for a in await sim.agents() if a["agentId"]}
        items = (await kube.list(AGENTS, namespace))["items"]
        found: dict[str, str] = {}
        for item in items:
            spec = item.get("spec") or {}
            agent_id = spec.get("agentId") or item["metadata"]["name"]
            simulated = wanted.get(agent_id)
            if simulated is None or not _ready(item):
                continue
            if sorted(spec.get("capabilities") or []) == sorted(simulated["capabilities"]):
                found[simulated["name"]] = item["metadata"]["name"]
        missing = {a["name"] for a in wanted.values()} - found.keys()
        if not missing:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"agents {sorted(missing)} not Ready within {within:.0f}s")
        await asyncio.sleep(0.25)


async def set_agent_spec(kube: KubeClient, namespace: str, names: list[str], **spec: Any) -> None:
    """What a user would `kubectl patch`: e.g. heartbeatTimeoutSeconds on every Agent."""
    for name in names:
        await kube.patch(AGENTS, namespace, name, {"spec": spec})
