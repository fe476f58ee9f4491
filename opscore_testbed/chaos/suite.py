"""Which scenarios exist and how to run a selection of them on one control plane."""

from __future__ import annotations

import random
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from opscore_testbed.bench.kube import BenchKube
from opscore_testbed.chaos import (
    agentkit_faults,
    ambiguous,
    bad_input,
    canary,
    fault_points,
    ha_faults,
    process_faults,
    soak,
)
from opscore_testbed.chaos.harness import SIZES, Chaos
from opscore_testbed.chaos.report import Row
from opscore_testbed.controlplane import ControlPlane

Scenario = Callable[[Chaos], Awaitable[list[Row]]]


def _one(run: Callable[[Chaos], Awaitable[Row]]) -> Scenario:
    async def scenario(ch: Chaos) -> list[Row]:
        return [await run(ch)]

    return scenario


async def _f4(ch: Chaos) -> list[Row]:
    return [
        await agentkit_faults.f4_agentkit_outage(ch),
        await agentkit_faults.f4_agentkit_forgets(ch),
    ]


SCENARIOS: dict[str, Scenario] = {
    "F1": _one(process_faults.f1_operator_sigkill),
    "F2": _one(process_faults.f2_sidecar_sigkill),
    "F3": _one(process_faults.f3_apiserver_down),
    "F4": _f4,
    "F5": _one(agentkit_faults.f5_silent_agents),
    "F6": _one(agentkit_faults.f6_one_slow_endpoint),
    "F7": _one(bad_input.f7_bad_input),
    "F8": _one(soak.f8_soak),
    "F9": fault_points.f9_fault_points,
    "F10": _one(ambiguous.f10_ambiguous_faults),
    "F11": _one(ha_faults.f11_leader_sigkill),
    "F12": _one(ha_faults.f12_split_brain),
    "F13": _one(ha_faults.f13_sidecar_replica_sigkill),
    # Always fails, on purpose (planted faults): run by name only, never by default.
    "CANARY": _one(canary.canary),
}


async def run(
    cp: ControlPlane,
    wanted: list[str],
    *,
    size: str,
    log_dir: Path,
    seed: int,
    soak_minutes: float = 20.0,
    show: Callable[[Row], None] = lambda row: None,
) -> list[Row]:
    """Run `wanted` (F1...F8) in order; a scenario that crashes is a row with its error."""
    kube = BenchKube.from_kubeconfig(str(cp.kubeconfig), qps=1000, burst=1000)
    ch = Chaos(
        cp=cp,
        kube=kube,
        sizes=SIZES[size],
        log_dir=log_dir,
        rng=random.Random(seed),
        soak_minutes=soak_minutes,
    )
    rows: list[Row] = []
    try:
        for name in wanted:
            try:
                produced = await SCENARIOS[name](ch)
            except Exception as exc:  # a broken scenario is a finding, not the end of the run
                produced = [
                    {
                        "scenario": name,
                        "error": f"{type(exc).__name__}: {exc}",
                        "problems": [traceback.format_exc(limit=8)],
                    }
                ]
            for row in produced:
                rows.append(row)
                show(row)
    finally:
        await kube.aclose()
    return rows
