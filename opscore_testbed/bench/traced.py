"""B1 with tracing on (`--traces`): what exporting spans costs in throughput.

The same three-step drain as B1, twice in one run on fresh namespaces and stacks: once
with tracing off, once with both processes exporting over OTLP to the test bed's Jaeger
(opscore_testbed.jaeger). One row: each run's workflows/min and their ratio
(`traced_vs_untraced`, 1.0 = no cost). The two runs share the machine with whatever else
runs on it: read the ratio with the load average next to it.
"""

from __future__ import annotations

import time
from typing import Any

from opscore_testbed.bench.common import Bench
from opscore_testbed.bench.workload import CompletionWatcher, create_all, three_steps
from opscore_testbed.jaeger import Jaeger

Row = dict[str, Any]


async def b1_traced(bench: Bench, jaeger: Jaeger) -> Row:
    """Raises nothing on a failed run: its problems are
    in the row, and the harness fails on them."""
    count = bench.sizes.b1_three_step
    per_min: dict[str, float] = {}
    problems: list[str] = []
    for label, env in (("off", {}), ("on", jaeger.exporter_env(schedule_delay_ms=5000))):
        ns = bench.namespace(f"b1t-{label}")
        with bench.stack(ns, bench.sizes.b1_agents, operator_env=env, sidecar_env=env):
            await bench.ready_agents(ns, bench.sizes.b1_agents)
            watcher = CompletionWatcher(bench.kube, ns)
            watcher.start()
            bodies = [three_steps(f"wf-{i:05d}") for i in range(count)]
            started = time.time()
            created = await create_all(bench.kube, ns, bodies)
            ok = await watcher.wait_for(set(created), within=600)
            finished = max(t for _, t in watcher.finished.values()) if ok else time.time()
            await watcher.stop()
        problems += [f"tracing {label}: {p}" for p in watcher.problems(set(created), within=600)]
        per_min[label] = count / (finished - started) * 60
    return {
        "scenario": f"B1 drain {count}x3-step, tracing off vs on (OTLP to Jaeger)",
        "problems": problems,
        "workflows": count,
        "agents": bench.sizes.b1_agents,
        "workflows_per_min_untraced": round(per_min["off"]),
        "workflows_per_min_traced": round(per_min["on"]),
        "traced_vs_untraced": round(per_min["on"] / per_min["off"], 2),
    }
