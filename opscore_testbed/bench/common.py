"""What every benchmark scenario shares: sizes, the bench's handle on the control plane and
the stacks it starts, percentiles, and waiting for the API server to go quiet."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opscore_testbed.bench.apimetrics import write_counts
from opscore_testbed.bench.audit import OPERATOR_ACCOUNT, SIDECAR_ACCOUNT, AuditLog
from opscore_testbed.bench.kube import BenchKube
from opscore_testbed.controlplane import ControlPlane
from opscore_testbed.stack import REPO, OpsCoreStack, StackOptions

#: The ServiceAccounts and Roles the bench runs Ops-Core under: the deployed ones.
ACCOUNTS = REPO / "deploy" / "instance" / "serviceaccounts.yaml"
ROLES = REPO / "deploy" / "instance" / "rbac.yaml"

Row = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Sizes:
    """How big each scenario runs: `smoke` keeps CI quick, `full` is the reported run.
    Rate searches are (lowest, highest, resolution) per second; see `search.py`."""

    b0_seconds: float
    b0_max_processes: int
    b1_one_step: int
    b1_three_step: int
    b1_agents: int
    b2_search: tuple[float, float, float]
    b2_seconds: float
    b3_seconds: float
    b4_search: tuple[float, float, float]
    b4_seconds: float
    b4_agents: int
    #: How long B4 then holds the rate it found (see `holding.py`).
    b4_hold_seconds: float
    b5_objects: int
    #: How often `make bench` runs each headline scenario (median and min-max reported).
    repeats: int


SIZES = {
    "smoke": Sizes(
        b0_seconds=2,
        b0_max_processes=2,
        b1_one_step=40,
        b1_three_step=10,
        b1_agents=5,
        b2_search=(2, 4, 2),
        b2_seconds=4,
        b3_seconds=4,
        b4_search=(20, 40, 20),
        b4_seconds=3,
        b4_agents=10,
        b4_hold_seconds=6,
        b5_objects=100,
        repeats=1,
    ),
    "full": Sizes(
        b0_seconds=10,
        b0_max_processes=16,
        b1_one_step=500,
        b1_three_step=200,
        b1_agents=20,
        b2_search=(4, 256, 2),
        b2_seconds=20,
        b3_seconds=20,
        b4_search=(25, 1600, 25),
        b4_seconds=10,
        b4_agents=100,
        b4_hold_seconds=90,
        b5_objects=10_000,
        repeats=3,
    ),
}


@dataclass
class Bench:
    cp: ControlPlane
    kube: BenchKube
    sizes: Sizes
    log_dir: Path
    #: Run the operator under py-spy in B1 (`--profile`): its profile lands in the results.
    profile: bool = False
    series: dict[str, Any] = field(default_factory=dict)

    @property
    def audit(self) -> AuditLog:
        """The API server's audit log: the bench needs it to attribute writes."""
        if self.cp.audit_log is None:
            raise RuntimeError("the bench needs a control plane started with audit=True")
        return AuditLog(self.cp.audit_log)

    def namespace(self, label: str) -> str:
        name = f"bench-{label.lower()}-{uuid.uuid4().hex[:6]}"
        self.cp.kubectl("create", "namespace", name)
        return name

    def stack(
        self,
        namespace: str,
        agents: int,
        *,
        operator_env: dict[str, str] | None = None,
        sidecar_env: dict[str, str] | None = None,
        **options: Any,
    ) -> OpsCoreStack:
        """The stack with the operator and the sidecar as their own ServiceAccounts, under
        the Roles deploy/ grants them, so the audit log tells their writes apart (and
        the bench measures the RBAC and token checks a cluster would do)."""
        specs = tuple(f"b{i:03d}:bench" for i in range(agents))
        self.cp.kubectl("apply", "-n", namespace, "-f", str(ACCOUNTS), "-f", str(ROLES))
        operator = self.cp.service_account_kubeconfig(namespace, OPERATOR_ACCOUNT)
        sidecar = self.cp.service_account_kubeconfig(namespace, SIDECAR_ACCOUNT)
        return OpsCoreStack(
            self.cp,
            namespace,
            self.log_dir / namespace,
            StackOptions(
                agents=specs,
                task_seconds=0.0,
                operator_env={"KUBECONFIG": str(operator), **(operator_env or {})},
                sidecar_env={"KUBECONFIG": str(sidecar), **(sidecar_env or {})},
                **options,
            ),
        )

    async def ready_agents(self, namespace: str, count: int, within: float = 120) -> None:
        from opscore_kube import AGENTS

        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            items = (await self.kube.list(AGENTS, namespace))["items"]
            ready = [
                a
                for a in items
                if "bench" in (a.get("spec") or {}).get("capabilities", [])
                and any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in (a.get("status") or {}).get("conditions", [])
                )
            ]
            if len(ready) >= count:
                return
            await asyncio.sleep(0.25)
        raise TimeoutError(f"{count} bench agents not Ready within {within}s")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def writes_quiet(kube: BenchKube, *, quiet: float, within: float) -> None:
    """Wait until the API server has served no write for `quiet` seconds."""
    deadline = time.monotonic() + within
    last = (await write_counts(kube)).total
    still_since = time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        now_total = (await write_counts(kube)).total
        if now_total != last:
            last, still_since = now_total, time.monotonic()
        elif time.monotonic() - still_since >= quiet:
            return
