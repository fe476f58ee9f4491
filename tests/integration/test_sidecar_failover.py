"""Two sidecar replicas behind HAProxy (the Service), one SIGKILLed while ten agents
report through it as fast as they can: the other replica goes on answering, the only
reports that fail are ones in flight on the killed replica when it died (at most one per
agent), and every report answered 202 is in its Agent's status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from opscore_testbed import kube_views as kv
from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.loadbalancer import SidecarBalancer
from opscore_testbed.processes import ManagedProcess, free_port
from opscore_testbed.stack import OpsCoreStack, StackOptions

AGENTS = 10
SECONDS = 6.0
KILL_AT = 2.0
T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def front(
    crds: ControlPlane, namespace: str, tmp_path: Path
) -> Iterator[tuple[str, list[ManagedProcess]]]:
    stack = OpsCoreStack(crds, namespace, tmp_path / "logs", StackOptions())
    sidecars: list[ManagedProcess] = []
    ports = [free_port(), free_port()]
    balancer = SidecarBalancer(backends=ports, work_dir=tmp_path / "haproxy")
    try:
        for index, port in enumerate(ports):
            sidecars.append(stack.spawn_sidecar(f"sidecar-{index}", port=port))
        balancer.start()
        yield balancer.url, sidecars
    finally:
        balancer.stop()
        for process in sidecars:
            process.stop()


async def agent(url: str, index: int, key: str, answers: list[tuple[int, float, int]]) -> None:
    """Report `idle`, one after another (as the SDK does), until the time is up."""
    agent_id = f"agent-{index:02d}"
    headers = {"Authorization": f"Bearer {key}"}
    started = time.monotonic()
    n = 0
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        while time.monotonic() - started < SECONDS:
            n += 1
            body = {
                "agentId": agent_id,
                "timestamp": (T0 + timedelta(milliseconds=n)).isoformat(),
                "state": "idle",
                "details": {"n": n},
            }
            sent = time.monotonic() - started
            try:
                answer = await client.post(
                    f"{url}/v1/opscore/agent/{agent_id}/state", json=body, headers=headers
                )
                status = answer.status_code
            except httpx.HTTPError:
                status = 0
            answers.append((index, sent, n if status == 202 else -status))


async def burst(url: str, sidecars: list[ManagedProcess], key: str) -> list[tuple[int, float, int]]:
    answers: list[tuple[int, float, int]] = []
    agents = [asyncio.create_task(agent(url, i, key, answers)) for i in range(AGENTS)]
    await asyncio.sleep(KILL_AT)  # the fault's moment in the burst, not a wait for a result
    sidecars[0].kill()
    await asyncio.gather(*agents)
    return answers


def test_killing_one_replica_loses_only_reports_in_flight_on_it(
    front: tuple[str, list[ManagedProcess]], crds: ControlPlane, namespace: str
) -> None:
    url, sidecars = front
    answers = asyncio.run(burst(url, sidecars, StackOptions().api_key))
    failed = [(i, sent) for i, sent, n in answers if n < 0]
    assert len(answers) > AGENTS * 20  # the replicas were busy
    assert len(failed) <= AGENTS  # at most the one each agent had in flight
    assert all(sent < KILL_AT + 0.5 for _, sent in failed), failed
    after = [n for _, sent, n in answers if sent > KILL_AT + 0.5]
    assert after
    assert all(n > 0 for n in after)  # the other replica serves everything
    newest: dict[str, int] = {}
    for i, _, n in answers:
        if n > 0:
            newest[f"agent-{i:02d}"] = max(newest.get(f"agent-{i:02d}", 0), n)
    for item in kv.items(crds, "agents", namespace):
        stored = [r["details"]["n"] for r in item["status"]["reports"]]
        assert stored[-1] == newest[item["spec"]["agentId"]]
