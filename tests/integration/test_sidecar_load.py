"""Under a concurrent load of interleaved reports, every workflow still finishes correctly.

Real processes: 20 reference agents (no task ids: completion is inferred from `idle`
after `active`) run 30 three-step workflows, while 50 other agents hammer the same sidecar
with `active` heartbeats and end with an `idle`. The sidecar batches per agent, so the
workflows' reports share the write path with the noise. What must hold:

- every workflow Succeeded, every step ran exactly once at AgentKit (no task lost, none
  inferred done early and dispatched again);
- every noise report was answered 202 (the default rate limits do not throttle this, and
  the sidecar never closes a kept-alive connection a client is reusing), the sidecar
  answered no 5xx, and each noise agent's final `idle` (a transition after
  `active`) is its stored state: heartbeats may be coalesced, transitions never dropped.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from opscore_testbed import kube_views as kv
from opscore_testbed.processes import wait_until
from opscore_testbed.stack import OpsCoreStack, StackOptions

WORKERS = 20
WORKFLOWS = 30
STEPS = ("fetch", "think", "write")
NOISE_AGENTS = 50
NOISE_INTERVAL = 0.25  # seconds between one noise agent's heartbeats (200 reports/s in all)

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def stack_options() -> StackOptions:
    return StackOptions(
        agents=tuple(f"w{i:02d}:work" for i in range(WORKERS)),
        task_seconds=0.05,
    )


def manifests() -> str:
    docs = []
    for i in range(WORKFLOWS):
        steps = "\n".join(
            f"    - name: {step}\n      capabilities: [work]\n      task: {step}" for step in STEPS
        )
        docs.append(
            "apiVersion: opscore.opspawn.io/v1alpha1\nkind: Workflow\n"
            f"metadata:\n  name: load-{i:02d}\nspec:\n  steps:\n{steps}\n"
        )
    return "---\n".join(docs)


class Noise:
    """50 agents reporting `active` every NOISE_INTERVAL until stopped, then `idle` once."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.key = key
        self.codes: Counter[int | str] = Counter()  # HTTP status, or the transport error
        self.final: dict[str, datetime] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Noise:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "noise reporters did not stop"

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=NOISE_AGENTS)
        async with httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.key}"},
            limits=limits,
            timeout=30,
            trust_env=False,
        ) as client:
            await asyncio.gather(*(self._agent(client, f"noise-{i:02d}") for i in range(50)))

    async def _agent(self, client: httpx.AsyncClient, agent_id: str) -> None:
        stamp = datetime.now(UTC)
        await asyncio.sleep(NOISE_INTERVAL * int(agent_id[-2:]) / NOISE_AGENTS)  # spread out
        while not self._stop.is_set():
            stamp = max(stamp + timedelta(microseconds=1), datetime.now(UTC))
            await self._send(client, agent_id, "active", stamp)
            await asyncio.sleep(NOISE_INTERVAL)
        stamp += timedelta(milliseconds=1)
        await self._send(client, agent_id, "idle", stamp)
        self.final[agent_id] = stamp

    async def _send(
        self, client: httpx.AsyncClient, agent_id: str, state: str, stamp: datetime
    ) -> None:
        body = {"agentId": agent_id, "timestamp": stamp.isoformat(), "state": state, "details": {}}
        try:
            resp = await client.post(f"/v1/opscore/agent/{agent_id}/state", json=body)
        except httpx.TransportError as exc:  # a lost report: counted, and the agent goes on
            self.codes[type(exc).__name__] += 1
        else:
            self.codes[resp.status_code] += 1


def _workers_ready(stack: OpsCoreStack) -> bool:
    agents = kv.items(stack.cp, "agents", stack.namespace)
    ready = [a for a in agents if str(a["spec"].get("agentName", "")).startswith("w")]
    return len(ready) == WORKERS and all(kv.is_ready(a) for a in ready)


def _finished(stack: OpsCoreStack) -> list[dict[str, Any]]:
    return [
        wf
        for wf in kv.items(stack.cp, "workflows", stack.namespace)
        if kv.phase(wf) in ("Succeeded", "Failed", "Cancelled")
    ]


def test_every_workflow_finishes_under_interleaved_report_load(stack: OpsCoreStack) -> None:
    wait_until(
        lambda: _workers_ready(stack), timeout=90, interval=0.5, what=f"{WORKERS} agents Ready"
    )
    with Noise(stack.sidecar_url, stack.options.api_key) as noise:
        wait_until(lambda: sum(noise.codes.values()) >= NOISE_AGENTS, timeout=60, what="noise")
        stack.cp.kubectl("apply", "-n", stack.namespace, "-f", "-", input=manifests())
        wait_until(
            lambda: len(_finished(stack)) == WORKFLOWS,
            timeout=300,
            interval=1.0,
            what=f"{WORKFLOWS} workflows to finish under load",
        )
    workflows = kv.items(stack.cp, "workflows", stack.namespace)
    assert sorted(kv.phase(wf) or "" for wf in workflows) == ["Succeeded"] * WORKFLOWS
    task_ids = [step["taskId"] for wf in workflows for step in wf["status"]["steps"]]
    assert len(task_ids) == WORKFLOWS * len(STEPS)
    counts = stack.sim_tasks()
    assert {t: counts.get(t) for t in task_ids} == dict.fromkeys(task_ids, 1)
    assert sum(counts.values()) == len(task_ids), "no task was dispatched twice"

    sent = sum(noise.codes.values())
    assert noise.codes == Counter({202: sent}), noise.codes
    print(f"\nload: {sent} noise reports next to {len(task_ids)} tasks")

    key = {"Authorization": f"Bearer {stack.options.api_key}"}

    def final_states_stored() -> bool:
        for agent_id, stamp in noise.final.items():
            resp = httpx.get(
                f"{stack.sidecar_url}/v1/opscore/agent/{agent_id}/state",
                headers=key,
                timeout=10,
                trust_env=False,
            )
            latest = resp.json()
            if latest["state"] != "idle" or datetime.fromisoformat(latest["timestamp"]) != stamp:
                return False
        return True

    assert len(noise.final) == NOISE_AGENTS
    wait_until(
        final_states_stored, timeout=30, interval=0.5, what="every noise agent's final idle stored"
    )
    metrics = httpx.get(f"{stack.sidecar_url}/metrics", timeout=10, trust_env=False).text
    server_errors = [
        line
        for line in metrics.splitlines()
        if line.startswith("opscore_sidecar_http_responses_total") and 'code="5' in line
    ]
    assert server_errors == []
