"""What every scenario shares: sizes, a fresh namespace with its own Ops-Core stack and
simulated fleet, and the clients to drive them."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from opscore_testbed.bench.kube import BenchKube
from opscore_testbed.chaos.fleet import SimAgent, Simulator, agents_ready, standard_fleet
from opscore_testbed.chaos.workload import StepPolicy
from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.stack import OpsCoreStack, StackOptions


@dataclass(frozen=True)
class Sizes:
    """How big and how long: `full` is the reported run, `short` the CI one."""

    workflows: int  # per batch
    rate: float  # workflows submitted per second (open loop: the load the faults hit)
    deadline_s: float  # a workflow not finished this long after the last fault is lost
    step_timeout_s: int
    retries: int
    sidecar_down_s: float
    apiserver_down_s: float
    agentkit_down_s: float
    heartbeat_s: int  # F5: the Agents' heartbeatTimeoutSeconds
    alongside: int  # F7: good workflows run next to the bad input
    slow_seconds: float = 5.0  # F6

    def policy(self) -> StepPolicy:
        return StepPolicy(timeout_seconds=self.step_timeout_s, retries=self.retries)


SIZES = {
    "full": Sizes(
        workflows=120,
        rate=4.0,
        deadline_s=240,
        step_timeout_s=10,
        retries=3,
        sidecar_down_s=2.0,
        apiserver_down_s=20.0,
        agentkit_down_s=30.0,
        heartbeat_s=15,
        alongside=30,
    ),
    "short": Sizes(
        workflows=20,
        rate=2.0,
        deadline_s=120,
        step_timeout_s=8,
        retries=3,
        sidecar_down_s=1.0,
        apiserver_down_s=8.0,
        agentkit_down_s=10.0,
        heartbeat_s=12,
        alongside=10,
    ),
}


@dataclass
class Chaos:
    """The suite's context: one control plane, one admin client, a seeded RNG."""

    cp: ControlPlane
    kube: BenchKube
    sizes: Sizes
    log_dir: Path
    rng: random.Random = field(default_factory=random.Random)
    soak_minutes: float = 20.0  # F8

    def namespace(self, label: str) -> str:
        name = f"chaos-{label.lower()}-{uuid.uuid4().hex[:6]}"
        self.cp.kubectl("create", "namespace", name)
        return name

    @contextlib.asynccontextmanager
    async def running(
        self,
        label: str,
        agents: list[SimAgent] | None = None,
        *,
        operator_env: dict[str, str] | None = None,
        sidecar_env: dict[str, str] | None = None,
    ) -> AsyncIterator[Run]:
        """A namespace with sidecar, operator and simulator, the fleet registered and
        Ready; every process is stopped by its pid on the way out. `operator_env` and
        `sidecar_env` are given to the first start of each (a scenario may change
        `run.stack.options` before restarting one)."""
        namespace = self.namespace(label)
        options = StackOptions(
            agents=(),
            sim_args=("--seed", str(self.rng.randrange(1 << 30))),
            operator_env=dict(operator_env or {}),
            sidecar_env=dict(sidecar_env or {}),
        )
        stack = OpsCoreStack(self.cp, namespace, self.log_dir / namespace, options)
        await asyncio.to_thread(stack.start)
        sim = Simulator(stack.sim_url)
        try:
            await sim.add(agents if agents is not None else standard_fleet())
            names = await agents_ready(self.kube, namespace, sim)
            yield Run(stack=stack, sim=sim, namespace=namespace, agents=names)
        finally:
            await sim.aclose()
            await asyncio.to_thread(stack.stop)
            self.cp.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@dataclass
class Run:
    """One scenario's running system."""

    stack: OpsCoreStack
    sim: Simulator
    namespace: str
    agents: dict[str, str]  # simulated agent name -> Agent resource name
