"""Two sidecar processes on the real API server take one agent's reports at the same
moments (real HTTP, one agent, reports alternated between the replicas): every report is
stored exactly once, in the agent's timestamp order, and the operator-owned fields the
operator wrote meanwhile are left alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from opscore_logic.report_log import report_limit
from opscore_testbed import kube_views as kv
from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.processes import ManagedProcess, free_port, wait_until
from opscore_testbed.stack import OpsCoreStack, StackOptions

AGENT_ID = "5b0c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d"
REPORTS = 60  # a one-task agent keeps report_limit(1) = 4: the later ones show who won
KEPT = report_limit(1)
T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def sidecars(crds: ControlPlane, namespace: str, tmp_path: Path) -> Iterator[list[str]]:
    stack = OpsCoreStack(crds, namespace, tmp_path / "logs", StackOptions())
    processes: list[ManagedProcess] = []
    try:
        ports = [free_port(), free_port()]
        for index, port in enumerate(ports):
            processes.append(stack.spawn_sidecar(f"sidecar-{index}", port=port))
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.stop()


async def send_all(urls: list[str], api_key: str) -> list[int]:
    """Every report once, alternating replicas, all in flight together."""
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(timeout=30, trust_env=False) as client:

        async def send(index: int) -> int:
            body = {
                "agentId": AGENT_ID,
                "timestamp": (T0 + timedelta(seconds=index)).isoformat(),
                "state": "idle" if index % 2 else "active",
                "details": {"n": index},
            }
            url = f"{urls[index % 2]}/v1/opscore/agent/{AGENT_ID}/state"
            return (await client.post(url, json=body, headers=headers)).status_code

        # The first report creates the Agent; the rest race on it.
        first = await send(0)
        return [first, *await asyncio.gather(*(send(i) for i in range(1, REPORTS)))]


def test_two_replicas_store_every_report_once_in_order(
    sidecars: list[str], crds: ControlPlane, namespace: str
) -> None:
    answers = asyncio.run(send_all(sidecars, StackOptions().api_key))
    assert set(answers) == {202}, answers
    expected = list(range(REPORTS - KEPT, REPORTS))  # the newest, once each, in order
    seen: list[list[int]] = []

    def converged() -> bool:
        agents = kv.items(crds, "agents", namespace)
        assert len(agents) == 1
        seen[:] = [[r["details"]["n"] for r in agents[0]["status"].get("reports", [])]]
        return seen[0] == expected

    # `active` heartbeats are answered once queued and may linger up to a second for
    # company (reports.py), so the last write can land after the last answer.
    try:
        wait_until(converged, timeout=10, interval=0.2, what=f"the newest {KEPT} reports")
    except TimeoutError:
        pytest.fail(f"stored {seen[0] if seen else None}, expected {expected}")
